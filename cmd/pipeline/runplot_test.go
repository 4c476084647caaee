package main

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// --plot is the MoCo sink's training report: with another sink it is refused before the run,
// naming the sink, rather than left to the sink's decoder as an unknown key.
func TestRunPlotNeedsTheMocoSink(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := runMain([]string{"run", syntheticConfig(t), "--plot", filepath.Join(t.TempDir(), "t.png")}, &stdout, &stderr)
	if code != 2 || !strings.Contains(stderr.String(), "moco sink's training report") || !strings.Contains(stderr.String(), `"null"`) {
		t.Fatalf("exit %d, want 2 and the sink named\n%s", code, stderr.String())
	}
}
