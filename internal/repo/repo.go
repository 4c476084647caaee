// Package repo finds the repository's root (the folder holding go.mod) and the shared/ folder
// beside it, for tests and benchmarks that read the bundled data or the reference vectors.
package repo

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Root is the first folder at or above dir that holds go.mod.
func Root(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := abs; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", errors.New("no go.mod above " + abs)
		}
	}
}

// SharedDir is <repo root>/../shared, where CI and developers keep the reference data.
func SharedDir(dir string) (string, error) {
	root, err := Root(dir)
	if err != nil {
		return "", err
	}
	shared := filepath.Join(filepath.Dir(root), "shared")
	if _, err := os.Stat(shared); err != nil {
		return "", fmt.Errorf("no shared/ beside the repo root %s: %w", root, err)
	}
	return shared, nil
}

// TestRoot is Root of the test's working folder; it fails the test when there is none.
func TestRoot(t testing.TB) string {
	t.Helper()
	root, err := Root(".")
	if err != nil {
		t.Fatal(err)
	}
	return root
}
