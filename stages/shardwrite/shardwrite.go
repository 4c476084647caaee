// Package shardwrite is the `pipeline shard` command: it writes WebDataset-style tar shards
// (NNNNNN.jpg or NNNNNN.png with NNNNNN.cls) from an ImageNet-style folder or from an IDX image
// and label pair (MNIST, Fashion-MNIST).
//
//	pipeline shard --from DIR --out out/train-%06d.tar [--per-shard 1000]
//	pipeline shard --idx-images train-images-idx3-ubyte.gz --idx-labels train-labels-idx1-ubyte.gz \
//	    --out out/fmnist-train-%06d.tar
//
// --out is a printf pattern with one integer verb for the shard number, counted from 0
// (out/train-%06d.tar gives out/train-000000.tar, out/train-000001.tar, ...); a name ending in
// .gz is gzip-compressed. Readers name the shards back with a brace range,
// out/train-{000000..000009}.tar.
//
// Samples are shuffled (seeded) before they are cut into shards unless --shuffle=false, so
// that each shard mixes the classes. A sample's key is its position in the input, the sorted
// <class>/<file> list of a folder or the IDX order, in at least six digits, so a key leads back
// to its source. Output is deterministic: the same input and flags give byte-identical shards
// (fixed member order, mtimes, owners and modes).
//
// IDX images are written as grayscale PNGs. Folder images are copied byte for byte, or, with
// --max-side N, those larger than N pixels on their longer side are downscaled to N and
// re-encoded (JPEG at --quality, PNG as PNG).
package shardwrite

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"

	"pipeline/internal/cli"
	"pipeline/stages/folder"
	"pipeline/stages/objstore"
)

// input is a list of samples that can be produced one at a time.
type input interface {
	count() int
	sample(i int) (Sample, error)
}

// Main runs `pipeline shard` with args (the arguments after "shard").
func Main(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pipeline shard", flag.ContinueOnError)
	fs.SetOutput(stderr)
	from := fs.String("from", "", "ImageNet-style folder DIR/<class>/<image> to read")
	idxImages := fs.String("idx-images", "", "IDX image file (n x rows x cols unsigned bytes; gzip or not)")
	idxLabels := fs.String("idx-labels", "", "IDX label file matching --idx-images")
	out := fs.String("out", "", "output shard pattern with one integer verb, e.g. out/train-%06d.tar (.gz: compressed)")
	perShard := fs.Int("per-shard", 1000, "samples per shard")
	limit := fs.Int("limit", 0, "write only the first N samples of the (shuffled) order; 0: all")
	shuffle := fs.Bool("shuffle", true, "shuffle the samples before cutting them into shards")
	seed := fs.Uint64("seed", 0, "seed of the shuffle")
	maxSide := fs.Int("max-side", 0, "folder images: downscale those with a longer side over N pixels; 0: copy as they are")
	quality := fs.Int("quality", 90, "JPEG quality of downscaled images")
	if err := fs.Parse(args); err != nil {
		return cli.Usage(err)
	}
	if fs.NArg() > 0 {
		return cli.Usagef("unexpected arguments %q", fs.Args())
	}
	if *out == "" {
		return cli.Usagef("--out is required")
	}
	if *limit < 0 || *maxSide < 0 || *quality < 1 || *quality > 100 {
		return cli.Usagef("--limit and --max-side cannot be negative; --quality is 1 to 100")
	}
	var in input
	switch {
	case *from != "" && *idxImages == "" && *idxLabels == "":
		l, err := folder.Scan(*from)
		if err != nil {
			return err
		}
		for label, name := range l.Classes {
			fmt.Fprintf(stdout, "class %d: %s\n", label, name)
		}
		in = &folderSamples{listing: l, maxSide: *maxSide, quality: *quality}
	case *from == "" && *idxImages != "" && *idxLabels != "":
		s, err := openIDX(*idxImages, *idxLabels)
		if err != nil {
			return err
		}
		in = s
	default:
		return cli.Usagef("give either --from DIR or both --idx-images and --idx-labels")
	}
	pattern, exists := *out, fileExists
	var remote *remoteOut // an s3:// --out: shards are written to a temporary folder, then uploaded
	if objstore.KindOf(*out) != objstore.KindLocal {
		var err error
		if remote, pattern, err = newRemoteOut(*out); err != nil {
			return err
		}
		defer remote.cleanup()
		exists = remote.exists
	}
	w, err := NewWriter(pattern, *perShard, stdout)
	if err != nil {
		return err
	}
	if remote != nil {
		w.Done = remote.upload
	}
	// An earlier run's shards would be overwritten, and those past this run's last one kept:
	// a glob over the folder would then mix both datasets.
	if first := fmt.Sprintf(*out, 0); exists(first) {
		return fmt.Errorf("--out %s: %s exists, from an earlier run: remove the old shards or choose another --out", *out, first)
	}
	order := make([]int, in.count())
	for i := range order {
		order[i] = i
	}
	if *shuffle {
		rng := rand.New(rand.NewPCG(*seed, 0x5a4d))
		rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
	}
	if *limit > 0 && *limit < len(order) {
		order = order[:*limit]
	}
	// A failed run leaves no half-converted dataset behind for a glob to pick up.
	abandon := func(err error) error {
		paths, cerr := w.Close() // again after a failed Close: it only lists the shards then
		for _, p := range paths {
			os.Remove(p)
		}
		if remote != nil {
			remote.abandon()
		}
		return fmt.Errorf("%w (the %d shards written so far were removed)", errors.Join(err, cerr), len(paths))
	}
	width := max(6, len(fmt.Sprint(in.count()-1)))
	for _, i := range order {
		s, err := in.sample(i)
		if err == nil {
			s.Key = fmt.Sprintf("%0*d", width, i)
			err = w.Add(s)
		}
		if err != nil {
			return abandon(fmt.Errorf("sample %d: %w", i, err))
		}
	}
	paths, err := w.Close()
	if err != nil {
		return abandon(err)
	}
	fmt.Fprintf(stdout, "%d samples in %d shards\n", len(order), len(paths))
	return nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
