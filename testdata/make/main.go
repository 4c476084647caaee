// Command make rebuilds the shards in testdata/ from their sources (see testdata/README.md):
//
//	go run ./testdata/make [-imagenet-like /work/data/imagenet-like] [-fashion-mnist /usr/share/datasets/fashion-mnist]
//
// Run it from the repository root. The output is deterministic.
package main

import (
	"archive/tar"
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"pipeline/stages/shardwrite"
)

// perClass is how many photos of each of the 10 classes the small photo set keeps.
const perClass = 5

func main() {
	photos := flag.String("imagenet-like", "/work/data/imagenet-like", "folder of the imagenet-like shards and index.tsv (shared/bench/make_imagenet_like.sh)")
	fmnist := flag.String("fashion-mnist", "/usr/share/datasets/fashion-mnist", "folder of the Fashion-MNIST IDX files")
	flag.Parse()
	if err := makePhotos(*photos); err != nil {
		log.Fatal(err)
	}
	if err := makeFashionMNIST(*fmnist); err != nil {
		log.Fatal(err)
	}
}

// makePhotos picks the first perClass samples of each class (in key order) from the
// imagenet-like set, lays them out as <class>/<key>.jpg and shards them downscaled.
func makePhotos(src string) error {
	chosen, classes, err := pick(filepath.Join(src, "index.tsv"))
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "testdata-photos-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	shards, err := filepath.Glob(filepath.Join(src, "imagenet-like-*.tar"))
	if err != nil || len(shards) == 0 {
		return fmt.Errorf("no imagenet-like-*.tar in %s", src)
	}
	found := 0
	for _, shard := range shards {
		n, err := extract(shard, chosen, tmp)
		if err != nil {
			return err
		}
		found += n
	}
	if found != len(chosen) {
		return fmt.Errorf("found %d of the %d chosen photos", found, len(chosen))
	}
	fmt.Printf("photos: %d samples of %d classes\n", found, len(classes))
	if err := writeSources(chosen, "testdata/imagenet-like/sources.tsv"); err != nil {
		return err
	}
	return shardwrite.Main([]string{"--from", tmp, "--out", "testdata/imagenet-like/train-%06d.tar",
		"--per-shard", "17", "--max-side", "192", "--quality", "85"}, os.Stdout, os.Stderr)
}

// writeSources records where each sample of the shards comes from. The shard writer keys a
// sample by its position in the sorted <class>/<file> listing, which is recomputed here.
func writeSources(chosen map[string]photo, path string) error {
	keys := make([]string, 0, len(chosen))
	for k := range chosen {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := chosen[keys[i]], chosen[keys[j]]
		return a.class < b.class || a.class == b.class && keys[i] < keys[j]
	})
	var sb strings.Builder
	sb.WriteString("key\tclass\timagenet_like_key\tsource_photo\n")
	for pos, k := range keys {
		fmt.Fprintf(&sb, "%06d\t%s\t%s\t%s\n", pos, chosen[k].class, k, chosen[k].source)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(sb.String()), 0o644)
}

// photo is a chosen sample: its class folder and the Debian photo it was cut from.
type photo struct{ class, source string }

// pick reads index.tsv (key, cls, class_name, source, ...) and returns, for the chosen keys, the
// class folder each goes to ("<cls>_<class_name>", so that sorted folders keep the class numbers).
func pick(index string) (map[string]photo, map[string]bool, error) {
	f, err := os.Open(index)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	chosen, classes, taken := map[string]photo{}, map[string]bool{}, map[string]int{}
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		cols := strings.Split(sc.Text(), "\t")
		if len(cols) < 4 {
			return nil, nil, fmt.Errorf("%s: bad line %q", index, sc.Text())
		}
		class := cols[1] + "_" + cols[2]
		if taken[class] < perClass {
			taken[class]++
			chosen[cols[0]] = photo{class: class, source: cols[3]}
			classes[class] = true
		}
	}
	return chosen, classes, sc.Err()
}

// extract copies the chosen .jpg members of shard into dir/<class>/<key>.jpg.
func extract(shard string, chosen map[string]photo, dir string) (int, error) {
	f, err := os.Open(shard)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	n := 0
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("%s: %w", shard, err)
		}
		key, ext, _ := strings.Cut(hdr.Name, ".")
		p, ok := chosen[key]
		if !ok || ext != "jpg" {
			continue
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			return n, fmt.Errorf("%s: %s: %w", shard, hdr.Name, err)
		}
		out := filepath.Join(dir, p.class, key+".jpg")
		if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
			return n, err
		}
		if err := os.WriteFile(out, data, 0o644); err != nil {
			return n, err
		}
		n++
	}
}

// makeFashionMNIST writes 2 shards of 512 training images and 1 of 512 test images, each a
// seeded random pick of its split, gzip-compressed (tar padding would triple their size).
func makeFashionMNIST(dir string) error {
	for _, split := range []struct{ name, prefix, limit string }{{"train", "train", "1024"}, {"test", "t10k", "512"}} {
		err := shardwrite.Main([]string{
			"--idx-images", filepath.Join(dir, split.prefix+"-images-idx3-ubyte.gz"),
			"--idx-labels", filepath.Join(dir, split.prefix+"-labels-idx1-ubyte.gz"),
			"--out", "testdata/fashion-mnist/" + split.name + "-%06d.tar.gz",
			"--per-shard", "512", "--limit", split.limit,
		}, os.Stdout, os.Stderr)
		if err != nil {
			return err
		}
	}
	return nil
}
