// Package folder reads an image dataset laid out as ImageNet's: root/<class>/<file>, one folder
// per class. Class indexes follow the sorted folder names; files are sorted by name within a
// class; only .jpg, .jpeg and .png files (any case) count. A sample's key is "<class>/<file>",
// its shard is the root, and its global index is its position in that sorted list of files.
// Symlinked class folders and files are followed, as in torchvision's ImageFolder.
package folder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"pipeline/pipeline"
)

// ReasonUnreadable is the skip reason of a file that was listed but cannot be read.
const ReasonUnreadable = "unreadable_file"

// DefaultMaxFileBytes is the largest file read when Options.MaxFileBytes is 0.
const DefaultMaxFileBytes = 64 << 20

// File is one image of the dataset.
type File struct {
	Key   string // "<class>/<file>"
	Label int32
	Index int64 // position in the listing
}

// Listing is the sorted content of a dataset folder.
type Listing struct {
	Root    string
	Classes []string // Classes[label] is the folder name of that class
	Files   []File
}

// Scan lists root. It is an error when root has no class folder or no image at all.
func Scan(root string) (*Listing, error) {
	entries, err := os.ReadDir(root) // sorted by name
	if err != nil {
		return nil, fmt.Errorf("dataset folder: %w", err)
	}
	l := &Listing{Root: root}
	for _, e := range entries {
		if !isDir(root, e) {
			continue
		}
		label := int32(len(l.Classes))
		l.Classes = append(l.Classes, e.Name())
		files, err := os.ReadDir(filepath.Join(root, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("dataset folder %s: %w", root, err)
		}
		names := make([]string, 0, len(files))
		for _, f := range files {
			if IsImageName(f.Name()) && isFile(filepath.Join(root, e.Name()), f) {
				names = append(names, f.Name())
			}
		}
		sort.Strings(names)
		for _, n := range names {
			l.Files = append(l.Files, File{Key: e.Name() + "/" + n, Label: label, Index: int64(len(l.Files))})
		}
	}
	if len(l.Files) == 0 {
		return nil, fmt.Errorf("dataset folder %s: no <class>/<image> files (found %d class folders)", root, len(l.Classes))
	}
	return l, nil
}

// isDir reports whether e, in dir, is a directory or a symlink to one (torchvision's
// ImageFolder follows links too).
func isDir(dir string, e os.DirEntry) bool {
	if e.Type()&os.ModeSymlink == 0 {
		return e.IsDir()
	}
	fi, err := os.Stat(filepath.Join(dir, e.Name()))
	return err == nil && fi.IsDir()
}

// isFile reports whether e, in dir, is a regular file or a symlink that does not lead to
// anything else; a dangling link is listed, so that reading it reports it as unreadable_file.
func isFile(dir string, e os.DirEntry) bool {
	if e.Type()&os.ModeSymlink == 0 {
		return e.Type().IsRegular()
	}
	fi, err := os.Stat(filepath.Join(dir, e.Name()))
	return err != nil || fi.Mode().IsRegular()
}

// IsImageName reports whether name has an image extension: .jpg, .jpeg or .png in any case.
func IsImageName(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".jpg", ".jpeg", ".png":
		return true
	}
	return false
}

// Allocator hands out the buffers for encoded bytes; *pipeline.Account is one.
type Allocator interface {
	Alloc(ctx context.Context, it *pipeline.Item, n int) ([]byte, error)
}

// Options says how to read a file.
type Options struct {
	Alloc        Allocator
	MaxFileBytes int64 // larger files are refused unread (ReasonTooLarge)
	// Skip, when it returns true for the file's index, yields the sample without touching the
	// file (Encoded nil): exact resume replays delivered samples this way.
	Skip func(index int64) bool
}

// Read returns the sample of file f of listing l, or a *pipeline.SampleError.
func (l *Listing) Read(ctx context.Context, f File, opt Options) (*pipeline.Item, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	it := &pipeline.Item{Meta: pipeline.Meta{Key: f.Key, Shard: l.Root, Index: f.Index, Label: f.Label}}
	if opt.Skip != nil && opt.Skip(f.Index) {
		return it, nil
	}
	if opt.MaxFileBytes <= 0 {
		opt.MaxFileBytes = DefaultMaxFileBytes
	}
	file, err := os.Open(filepath.Join(l.Root, filepath.FromSlash(f.Key)))
	if err != nil {
		return nil, pipeline.Bad(it.Meta, ReasonUnreadable, err)
	}
	defer file.Close()
	st, err := file.Stat()
	if err != nil {
		return nil, pipeline.Bad(it.Meta, ReasonUnreadable, err)
	}
	switch size := st.Size(); {
	case size == 0:
		return nil, pipeline.Badf(it.Meta, pipeline.ReasonEmpty, "file is empty")
	case size > opt.MaxFileBytes:
		return nil, pipeline.Badf(it.Meta, pipeline.ReasonTooLarge, "file has %d bytes, more than max_member_bytes %d", size, opt.MaxFileBytes)
	}
	buf, err := opt.Alloc.Alloc(ctx, it, int(st.Size()))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", it.Meta, err)
	}
	if _, err := io.ReadFull(file, buf); err != nil {
		it.Release()
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("file shrank while being read: %w", err)
		}
		return nil, pipeline.Bad(it.Meta, ReasonUnreadable, err)
	}
	it.Encoded = buf
	return it, nil
}
