package shardwrite

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/image/draw"

	"pipeline/stages/folder"
)

// folderSamples reads the images of an ImageNet-style folder, downscaling them on the way
// when maxSide is set.
type folderSamples struct {
	listing *folder.Listing
	maxSide int
	quality int
}

func (s *folderSamples) count() int { return len(s.listing.Files) }

func (s *folderSamples) sample(i int) (Sample, error) {
	f := s.listing.Files[i]
	path := filepath.Join(s.listing.Root, filepath.FromSlash(f.Key))
	data, err := os.ReadFile(path)
	if err != nil {
		return Sample{}, err
	}
	ext := "jpg"
	if strings.EqualFold(filepath.Ext(f.Key), ".png") {
		ext = "png"
	}
	if s.maxSide > 0 {
		if data, err = shrink(data, ext, s.maxSide, s.quality); err != nil {
			return Sample{}, fmt.Errorf("%s: %w", path, err)
		}
	}
	return Sample{Image: data, Ext: ext, Label: int(f.Label)}, nil
}

// shrink re-encodes an image whose longer side is over maxSide at that size (Catmull-Rom
// filter); smaller images are kept byte for byte.
func shrink(data []byte, ext string, maxSide, quality int) ([]byte, error) {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	if max(cfg.Width, cfg.Height) <= maxSide {
		return data, nil
	}
	src, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	w, h := cfg.Width, cfg.Height
	if w >= h {
		w, h = maxSide, max(1, (h*maxSide+w/2)/w)
	} else {
		w, h = max(1, (w*maxSide+h/2)/h), maxSide
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.CatmullRom.Scale(dst, dst.Bounds(), src, src.Bounds(), draw.Src, nil)
	var buf bytes.Buffer
	if ext == "png" {
		err = png.Encode(&buf, dst)
	} else {
		err = jpeg.Encode(&buf, dst, &jpeg.Options{Quality: quality})
	}
	return buf.Bytes(), err
}
