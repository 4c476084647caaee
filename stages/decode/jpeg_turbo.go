//go:build cgo

package decode

/*
#cgo LDFLAGS: -lturbojpeg
#include <turbojpeg.h>
#include <jconfig.h>
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"unsafe"

	"pipeline/pipeline"
)

// turboVersion is the version of the headers built against, e.g. 2001005 for 2.1.5.
const turboVersion = C.LIBJPEG_TURBO_VERSION_NUMBER

var defaultJPEG = jpegBackend{
	name: fmt.Sprintf("libjpeg-turbo %d.%d.%d",
		turboVersion/1000000, turboVersion/1000%1000, turboVersion%1000),
	decode: decodeJPEGTurbo,
}

// turbo owns one TurboJPEG decompressor. A handle is not safe for concurrent use, so each
// decode takes one from turboHandles for its whole duration.
type turbo struct {
	h       C.tjhandle
	cleanup runtime.Cleanup
}

// turboHandles recycles decompressors between decodes: in practice one per busy worker. A
// handle the pool drops is destroyed by the cleanup attached when it was made.
var turboHandles = sync.Pool{New: func() any {
	h := C.tjInitDecompress()
	if h == nil {
		return nil
	}
	t := &turbo{h: h}
	t.cleanup = runtime.AddCleanup(t, func(h C.tjhandle) { C.tjDestroy(h) }, h)
	return t
}}

// destroy frees a handle that must not be reused: TurboJPEG 2.1 keeps the warning flag and
// error text of a failed call, so the next header read on the same handle fails too.
func (t *turbo) destroy() {
	t.cleanup.Stop()
	C.tjDestroy(t.h)
	t.h = nil
}

func (t *turbo) lastError() string { return C.GoString(C.tjGetErrorStr2(t.h)) }

// decodeFlags: accurate DCT and fancy upsampling (the defaults, as in Pillow, so pixels match
// Pillow bit for bit), and a cap on progressive scans against crafted CPU bombs.
const decodeFlags = C.TJFLAG_LIMITSCANS

func decodeJPEGTurbo(data []byte, check sizeCheck, alloc Alloc) (pipeline.Image, error) {
	t, _ := turboHandles.Get().(*turbo)
	if t == nil {
		return pipeline.Image{}, errors.New("libjpeg-turbo: tjInitDecompress failed")
	}
	reusable := false // only a handle whose calls all succeeded goes back to the pool
	defer func() {
		if reusable {
			turboHandles.Put(t)
		} else {
			t.destroy()
		}
	}()

	src := (*C.uchar)(unsafe.Pointer(unsafe.SliceData(data)))
	size := C.ulong(len(data))
	var w, h, subsamp, colorspace C.int
	if C.tjDecompressHeader3(t.h, src, size, &w, &h, &subsamp, &colorspace) != 0 {
		msg := t.lastError()
		if strings.Contains(msg, "Could not determine subsampling type") {
			// TurboJPEG 2.1 has no name for some valid samplings (4:1:0, say) that libjpeg,
			// so Pillow, decodes: image/jpeg decodes them instead (a few LSB off Pillow).
			return decodeJPEGStd(data, check, alloc)
		}
		return pipeline.Image{}, errorf(pipeline.ReasonCorrupt, "JPEG header: %s", msg)
	}
	reusable = true
	if err := check(FormatJPEG, int(w), int(h)); err != nil {
		return pipeline.Image{}, err
	}

	// libjpeg cannot turn CMYK or YCCK into RGB: take the (inverted) CMYK and convert it in
	// place, in the same buffer.
	cmyk := colorspace == C.TJCS_CMYK || colorspace == C.TJCS_YCCK
	pixelFormat, bpp := C.int(C.TJPF_RGB), 3
	if cmyk {
		pixelFormat, bpp = C.TJPF_CMYK, 4
	}
	n := int(w) * int(h) * bpp
	buf, err := alloc(n)
	if err != nil {
		return pipeline.Image{}, err
	}
	buf = buf[:n]
	dst := (*C.uchar)(unsafe.Pointer(unsafe.SliceData(buf)))
	if C.tjDecompress2(t.h, src, size, dst, w, w*C.int(bpp), h, pixelFormat, decodeFlags) != 0 {
		if msg, fatal := t.lastError(), C.tjGetErrorCode(t.h) == C.TJERR_FATAL; fatal {
			return pipeline.Image{}, errorf(pipeline.ReasonCorrupt, "JPEG: %s", msg)
		} else if strings.Contains(msg, "Premature end of JPEG file") {
			// Pillow refuses a truncated file ("image file is truncated"); so do we.
			return pipeline.Image{}, errorf(pipeline.ReasonCorrupt, "JPEG: truncated: %s", msg)
		}
		// Other warnings ("extraneous bytes before marker", a bad Huffman code) leave a
		// complete image that Pillow accepts too.
		reusable = false
	}
	if cmyk {
		buf = invertedCMYKToRGB(buf)
	}
	return pipeline.Image{Width: int(w), Height: int(h), Pix: buf}, nil
}
