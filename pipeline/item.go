// Package pipeline is the streaming runtime: the data types that flow between stages, the stage
// runner with its bounded channels and counters, and the memory budget that every buffer is
// charged against.
//
// Data flows one way: a Source yields Items holding encoded bytes, the decode stage fills
// Item.Image, the augment stage fills Item.Groups, and the batcher folds Items into Arrow records
// for a sink. An Item is owned by exactly one goroutine at a time; whoever drops it calls Release.
package pipeline

import "fmt"

// Meta identifies a sample wherever it is in the pipeline.
type Meta struct {
	Key   string // the sample key inside its shard or folder ("000123", "n01440764/x.JPEG")
	Shard string // the shard file or folder the sample came from
	Index int64  // stable global index: the same sample has the same index in every run
	Epoch int
	Label int32
	// Seq is the position of the sample in the stream the source emitted (after shuffling),
	// counted from 0 over the whole run. The batcher restores this order, so batches do not
	// depend on how workers were scheduled.
	Seq int64
}

// String names the sample in error messages and logs.
func (m Meta) String() string {
	if m.Shard == "" {
		return m.Key
	}
	return fmt.Sprintf("%s[%s]", m.Shard, m.Key)
}

// Image is a packed 8-bit RGB image, row-major, 3 bytes a pixel (HWC).
type Image struct {
	Width, Height int
	Pix           []uint8 // len(Pix) == Width*Height*3
}

// Stride is the number of bytes in one row.
func (im Image) Stride() int { return im.Width * 3 }

// Bytes is the size of the pixel buffer the image needs.
func (im Image) Bytes() int64 { return int64(im.Width) * int64(im.Height) * 3 }

// ViewGroup is one named group of views of a sample, e.g. "q" and "k" for MoCo, or "global"
// and "local" for DINO. Every view in a group has the same size; each group becomes one Arrow
// column.
type ViewGroup struct {
	Name   string
	Views  []Image
	Params []ViewParams // the parameters that made Views[i]; kept only when asked for
}

// Item is the unit of work: one sample on its way from source to batch.
type Item struct {
	Meta
	Encoded []byte      // filled by the source
	Image   Image       // filled by decode
	Groups  []ViewGroup // filled by augment

	// Skip is set when the sample was dropped under the on_error: skip policy. A skipped item
	// still travels to the batcher so that ordering and counting stay exact, but it carries
	// no buffers.
	Skip *SampleError

	charges []charge
}

// Release gives back every buffer the item holds to the memory budget and forgets them.
func (it *Item) Release() {
	for _, c := range it.charges {
		c.account.release(c.n, c.buf)
	}
	it.charges = it.charges[:0]
	it.Encoded = nil
	it.Image = Image{}
	it.Groups = nil
}

// ReleaseEncoded gives back the encoded bytes only (decode calls it once the pixels exist).
func (it *Item) ReleaseEncoded() { it.releaseKind(kindEncoded); it.Encoded = nil }

// ReleaseImage gives back the decoded image only (augment calls it once the views exist).
func (it *Item) ReleaseImage() { it.releaseKind(kindDecoded); it.Image = Image{} }

func (it *Item) releaseKind(k bufferKind) {
	kept := it.charges[:0]
	for _, c := range it.charges {
		if c.account.kind == k {
			c.account.release(c.n, c.buf)
		} else {
			kept = append(kept, c)
		}
	}
	it.charges = kept
}
