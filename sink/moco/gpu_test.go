package moco

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"

	"pipeline/sink/moco/device"
)

// TestGPUStep measures a ResNet-50 MoCo v2 step (batch 256, 224², K=65536) on an XLA device.
// It runs only when MOCO_GPU_PLUGIN names a PJRT plugin (bench/gpu/compile.sh runs it); it
// prints one JSON line per dtype. MOCO_GPU_DTYPES, MOCO_GPU_BN_SPLITS and MOCO_GPU_OPTIONS
// (backend options, comma-separated) pick the variant.
func TestGPUStep(t *testing.T) {
	plugin := os.Getenv("MOCO_GPU_PLUGIN")
	if plugin == "" {
		t.Skip("MOCO_GPU_PLUGIN not set")
	}
	var options []string
	if o := os.Getenv("MOCO_GPU_OPTIONS"); o != "" {
		options = strings.Split(o, ",")
	}
	backend, err := device.Open(device.XLA, plugin, options...)
	if err != nil {
		t.Fatal(err)
	}
	dtypesList := "float32,bfloat16"
	if d := os.Getenv("MOCO_GPU_DTYPES"); d != "" {
		dtypesList = d
	}
	const batch, side, steps = 256, 224, 20
	host := [][]uint8{flatBytes(randomViews(1, batch, side, side)), flatBytes(randomViews(2, batch, side, side))}
	upload := func(pix []uint8) *tensors.Tensor {
		buf, err := backend.BufferFromFlatData(0, pix, shapes.Make(dtypes.Uint8, batch, side, side, 3))
		if err != nil {
			t.Fatal(err)
		}
		tt, err := tensors.FromBuffer(backend, buf)
		if err != nil {
			t.Fatal(err)
		}
		return tt
	}
	for _, dtype := range strings.Split(dtypesList, ",") {
		cfg := DefaultConfig()
		cfg.Plugin, cfg.DType = plugin, dtype
		if v := os.Getenv("MOCO_GPU_BN_SPLITS"); v != "" {
			if cfg.BNSplits, err = strconv.Atoi(v); err != nil {
				t.Fatalf("MOCO_GPU_BN_SPLITS: %v", err)
			}
		}
		r := map[string]any{"arch": "resnet50", "bs": batch, "dtype": dtype, "bn_splits": cfg.BNSplits, "options": options}
		fmt.Printf("compiling the %s step (bn_splits %d) on %s\n", dtype, cfg.BNSplits, backend.Description())
		tr, err := NewTrainer(cfg, backend)
		if err != nil {
			t.Fatal(err)
		}
		imq, imk := upload(host[0]), upload(host[1])
		t0 := time.Now()
		res, err := tr.TrainStep(imq, imk, 0)
		if err != nil {
			r["error"] = err.Error()
			printJSON(r)
			continue
		}
		r["first_step_s"] = time.Since(t0).Seconds()
		fmt.Printf("first %s step (compile included) took %.1fs\n", dtype, r["first_step_s"])
		for range 3 {
			res, _ = tr.TrainStep(imq, imk, 0)
		}
		t0 = time.Now()
		for range steps {
			if res, err = tr.TrainStep(imq, imk, 0); err != nil {
				t.Fatal(err)
			}
		}
		r["step_ms"] = time.Since(t0).Seconds() * 1000 / steps
		r["loss"] = res.Loss
		// Host-to-device copy of one batch (both views), then steps with the next batch's
		// upload running concurrently, as the sink's double buffering does.
		t0 = time.Now()
		for range 3 {
			upload(host[0]).FinalizeAll()
			upload(host[1]).FinalizeAll()
		}
		perBatch := time.Since(t0).Seconds() / 3
		r["upload_ms"] = perBatch * 1000
		r["upload_gb_s"] = float64(2*len(host[0])) / perBatch / 1e9
		t0 = time.Now()
		for range steps {
			var wg sync.WaitGroup
			var nq, nk *tensors.Tensor
			wg.Add(1)
			go func() { defer wg.Done(); nq, nk = upload(host[0]), upload(host[1]) }()
			if res, err = tr.TrainStep(imq, imk, 0); err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			imq.FinalizeAll()
			imk.FinalizeAll()
			imq, imk = nq, nk
		}
		r["step_with_overlapped_upload_ms"] = time.Since(t0).Seconds() * 1000 / steps
		r["twin_views_per_s"] = float64(batch) / (r["step_with_overlapped_upload_ms"].(float64) / 1000)
		printJSON(r)
	}
}

func printJSON(r map[string]any) {
	b, _ := json.Marshal(r)
	fmt.Println(string(b))
}
