// Command onestep runs the first training steps of our trainer (sink/moco, SimpleGo) on the
// batches of a views file and writes its state before and after them, their losses and learning
// rates, the keys of the last one and the key permutation of every batch of the file, for
// onestep.py to replay the same steps in the PyTorch reference from the same weights.
//
//	go run ./bench/moco_reference/onestep -views out/views-seed1.arrow -seed 1 -steps 1 -out out/onestep
//
// The trainer's config is examples/fashion-mnist.yaml's sink block (its values are set below).
package main

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
	"github.com/gomlx/gomlx/pkg/ml/context"

	"pipeline/schema"
	"pipeline/sink/moco"
	"pipeline/sink/moco/device"
)

// entry is one array of a dump: float32 (or int32) little-endian at Offset in the .bin file.
type entry struct {
	Name   string `json:"name"`
	DType  string `json:"dtype"`
	Shape  []int  `json:"shape"`
	Offset int64  `json:"offset"`
}

func main() {
	views := flag.String("views", "", "Arrow IPC stream of views (arrow-file sink)")
	out := flag.String("out", "out/onestep", "output folder")
	seed := flag.Uint64("seed", 1, "the run's seed (init, queue, key shuffle)")
	steps := flag.Int("steps", 1, "training steps to run")
	flag.Parse()
	if err := run(*views, *out, *seed, *steps); err != nil {
		fmt.Fprintln(os.Stderr, "onestep:", err)
		os.Exit(1)
	}
}

// exampleConfig is examples/fashion-mnist.yaml's trainer.
func exampleConfig(seed uint64) moco.Config {
	cfg := moco.DefaultConfig()
	cfg.Backend, cfg.Encoder, cfg.Stem = device.Go, "small", "cifar"
	cfg.Queue, cfg.BNSplits, cfg.Momentum, cfg.LR = 1024, 4, 0.99, 0.24
	cfg.Epochs, cfg.Seed = 6, seed
	return cfg
}

func run(viewsPath, out string, seed uint64, steps int) error {
	if steps < 1 {
		return fmt.Errorf("-steps %d: want at least 1", steps)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	f, err := os.Open(viewsPath)
	if err != nil {
		return err
	}
	defer f.Close()
	r, err := ipc.NewReader(f)
	if err != nil {
		return fmt.Errorf("%s: %w", viewsPath, err)
	}
	defer r.Release()
	cfg := exampleConfig(seed)
	backend, err := device.Open(cfg.Backend, "")
	if err != nil {
		return err
	}
	t, err := moco.NewTrainer(cfg, backend)
	if err != nil {
		return err
	}
	if err := dump(t.Context(), filepath.Join(out, "before")); err != nil {
		return err
	}
	var losses, lrs []float64
	var keys []float32
	batches, n := 0, 0
	for ; r.Next(); batches++ {
		if batches >= steps {
			continue // counted for the permutations only
		}
		rec := r.RecordBatch()
		q, shape, err := schema.Uint8Tensor(rec, "q")
		if err != nil {
			return fmt.Errorf("%s batch %d: %w", viewsPath, batches, err)
		}
		k, _, err := schema.Uint8Tensor(rec, "k")
		if err != nil {
			return fmt.Errorf("%s batch %d: %w", viewsPath, batches, err)
		}
		epochs, ok := rec.Column(int(rec.Schema().FieldIndices("epoch")[0])).(*array.Int32)
		if !ok {
			return fmt.Errorf("%s batch %d: epoch column is not int32", viewsPath, batches)
		}
		n = shape[0]
		res, err := t.TrainStep(tensors.FromFlatDataAndDimensions(q, shape...), tensors.FromFlatDataAndDimensions(k, shape...), int(epochs.Value(0)))
		if err != nil {
			return err
		}
		losses, lrs = append(losses, float64(res.Loss)), append(lrs, res.LR)
		keys = tensors.MustCopyFlatData[float32](res.Keys)
	}
	if err := r.Err(); err != nil {
		return fmt.Errorf("%s: %w", viewsPath, err)
	}
	if err := dump(t.Context(), filepath.Join(out, "after")); err != nil {
		return err
	}
	perms := make([][]int32, batches)
	for i := range perms {
		perms[i] = permutation(seed, uint64(i), n)
	}
	b, err := json.Marshal(map[string]any{"losses": losses, "lrs": lrs, "keys": keys, "perms": perms, "batch": n})
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, "steps.json"), b, 0o644)
}

// permutation repeats the trainer's key shuffle of a step (Trainer.permutation): a PCG seeded
// by (seed, step). onestep.py checks it against the keys the step returned.
func permutation(seed, step uint64, n int) []int32 {
	rng := rand.New(rand.NewPCG(seed, step))
	p := make([]int32, n)
	for i := range p {
		p[i] = int32(i)
	}
	rng.Shuffle(len(p), func(i, j int) { p[i], p[j] = p[j], p[i] })
	return p
}

// dump writes every variable of ctx to prefix.bin with its index in prefix.json.
func dump(ctx *context.Context, prefix string) error {
	bin, err := os.Create(prefix + ".bin")
	if err != nil {
		return err
	}
	defer bin.Close()
	var index []entry
	var offset int64
	for v := range ctx.IterVariables() {
		value := v.MustValue()
		e := entry{Name: v.ScopeAndName(), Shape: value.Shape().Dimensions, Offset: offset}
		var raw []byte
		switch value.DType() {
		case dtypes.Float32:
			e.DType = "float32"
			for _, x := range tensors.MustCopyFlatData[float32](value) {
				raw = binary.LittleEndian.AppendUint32(raw, math.Float32bits(x))
			}
		case dtypes.Int32:
			e.DType = "int32"
			for _, x := range tensors.MustCopyFlatData[int32](value) {
				raw = binary.LittleEndian.AppendUint32(raw, uint32(x))
			}
		default:
			return fmt.Errorf("variable %s: dtype %s", e.Name, value.DType())
		}
		if _, err := bin.Write(raw); err != nil {
			return err
		}
		offset += int64(len(raw))
		index = append(index, e)
	}
	b, err := json.Marshal(index)
	if err != nil {
		return err
	}
	return os.WriteFile(prefix+".json", b, 0o644)
}
