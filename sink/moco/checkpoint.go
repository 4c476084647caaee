package moco

import (
	"encoding/gob"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
	"github.com/gomlx/gomlx/pkg/core/tensors"
)

// checkpointFile holds everything a resumed run needs. Tensors are stored as raw bytes, so a
// round trip is bit-exact.
type checkpointFile struct {
	Config        Config
	Step          int64
	Epoch         int
	KNNDone       int // Trainer.knnDone
	Batch, H, W   int
	PipelineState []byte // opaque position of the data pipeline after the last trained batch
	Variables     []savedVariable
}

type savedVariable struct {
	Scope, Name string
	DType       string
	Dims        []int
	Trainable   bool
	Data        []byte
}

const checkpointPrefix = "checkpoint-"

// Save writes the whole training state (both encoders, BN statistics, SGD buffers, queue and
// pointer, step, epoch, pipeline position) to dir/checkpoint-<step>, atomically, and keeps the
// newest cfg.CheckpointKeep checkpoints.
func (t *Trainer) Save(dir string, pipelineState []byte) (string, error) {
	ck := checkpointFile{Config: t.cfg, Step: t.step, Epoch: t.epoch, KNNDone: t.knnDone, Batch: t.batch, H: t.height, W: t.width,
		PipelineState: pipelineState}
	for v := range t.ctx.IterVariables() {
		value, err := v.Value()
		if err != nil {
			return "", fmt.Errorf("checkpoint: variable %s: %w", v.ScopeAndName(), err)
		}
		sv := savedVariable{Scope: v.Scope(), Name: v.Name(), DType: value.DType().String(),
			Dims: value.Shape().Dimensions, Trainable: v.Trainable}
		if err := value.ConstBytes(func(data []byte) { sv.Data = append([]byte(nil), data...) }); err != nil {
			return "", fmt.Errorf("checkpoint: variable %s: %w", v.ScopeAndName(), err)
		}
		ck.Variables = append(ck.Variables, sv)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	path := filepath.Join(dir, fmt.Sprintf("%s%09d.gob", checkpointPrefix, t.step))
	tmp, err := os.CreateTemp(dir, ".tmp-checkpoint-*")
	if err != nil {
		return "", fmt.Errorf("checkpoint: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := gob.NewEncoder(tmp).Encode(&ck); err != nil {
		tmp.Close()
		return "", fmt.Errorf("checkpoint %s: %w", path, err)
	}
	// On disk before the rename, so that a crash cannot leave a truncated newest checkpoint
	// that the next run would pick and fail on.
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("checkpoint %s: %w", path, err)
	}
	if d, err := os.Open(dir); err == nil { // the rename itself
		d.Sync()
		d.Close()
	}
	return path, pruneCheckpoints(dir, t.cfg.CheckpointKeep)
}

// listCheckpoints returns the checkpoints in dir, oldest first.
func listCheckpoints(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, checkpointPrefix) && strings.HasSuffix(name, ".gob") {
			if _, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(name, checkpointPrefix), ".gob")); err == nil {
				paths = append(paths, filepath.Join(dir, name))
			}
		}
	}
	sort.Strings(paths) // zero-padded step numbers sort in step order
	return paths, nil
}

func pruneCheckpoints(dir string, keep int) error {
	if keep <= 0 {
		return nil
	}
	paths, err := listCheckpoints(dir)
	if err != nil {
		return err
	}
	for len(paths) > keep {
		if err := os.Remove(paths[0]); err != nil {
			return fmt.Errorf("pruning checkpoints: %w", err)
		}
		paths = paths[1:]
	}
	return nil
}

// LatestCheckpoint returns the newest checkpoint in dir, or "" if there is none.
func LatestCheckpoint(dir string) (string, error) {
	paths, err := listCheckpoints(dir)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil || len(paths) == 0 {
		return "", err
	}
	return paths[len(paths)-1], nil
}

func readCheckpoint(path string) (*checkpointFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ck checkpointFile
	if err := gob.NewDecoder(f).Decode(&ck); err != nil {
		return nil, fmt.Errorf("checkpoint %s: %w", path, err)
	}
	return &ck, nil
}

// Load restores a checkpoint written by Save into t (built with the same architecture) and
// returns the pipeline position stored with it.
func (t *Trainer) Load(path string) (pipelineState []byte, err error) {
	ck, err := readCheckpoint(path)
	if err != nil {
		return nil, err
	}
	if ck.Config.Arch() != t.cfg.Arch() {
		return nil, fmt.Errorf("checkpoint %s holds a %+v encoder, the config asks for %+v", path, ck.Config.Arch(), t.cfg.Arch())
	}
	for _, sv := range ck.Variables {
		v := t.ctx.GetVariableByScopeAndName(sv.Scope, sv.Name)
		if v == nil {
			return nil, fmt.Errorf("checkpoint %s: variable %s/%s does not exist in this model", path, sv.Scope, sv.Name)
		}
		value, err := restoreTensor(sv)
		if err != nil {
			return nil, fmt.Errorf("checkpoint %s: variable %s/%s: %w", path, sv.Scope, sv.Name, err)
		}
		if !value.Shape().Equal(v.Shape()) {
			return nil, fmt.Errorf("checkpoint %s: variable %s/%s is %s, the model wants %s", path, sv.Scope, sv.Name, value.Shape(), v.Shape())
		}
		if err := v.SetValue(value); err != nil {
			return nil, fmt.Errorf("checkpoint %s: variable %s/%s: %w", path, sv.Scope, sv.Name, err)
		}
	}
	t.step, t.epoch, t.knnDone = ck.Step, ck.Epoch, ck.KNNDone
	if ck.Batch > 0 {
		if err := t.ensureShapes(ck.Batch, ck.H, ck.W); err != nil {
			return nil, fmt.Errorf("checkpoint %s: %w", path, err)
		}
		// Enqueue writes whole blocks of keys: a pointer inside a block (the checkpoint was
		// written with `symmetric` set otherwise) would overwrite the wrong rows.
		ptr := tensors.ToScalar[int32](t.ctx.GetVariableByScopeAndName("/"+scopeQueue, queuePtrVar).MustValue())
		if n := t.cfg.keysPerStep(ck.Batch); int(ptr)%n != 0 {
			return nil, fmt.Errorf("checkpoint %s: its queue pointer %d is not a multiple of the %d keys this config enqueues per step (was `symmetric` changed?)", path, ptr, n)
		}
	}
	return ck.PipelineState, nil
}

func restoreTensor(sv savedVariable) (*tensors.Tensor, error) {
	dtype, err := dtypes.DTypeString(sv.DType)
	if err != nil {
		return nil, err
	}
	t := tensors.FromShape(shapes.Make(dtype, sv.Dims...))
	var copyErr error
	err = t.MutableBytes(func(data []byte) {
		if len(data) != len(sv.Data) {
			copyErr = fmt.Errorf("%d bytes stored for %d", len(sv.Data), len(data))
			return
		}
		copy(data, sv.Data)
	})
	if err == nil {
		err = copyErr
	}
	return t, err
}
