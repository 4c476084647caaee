// Package mococli holds the trainer's command-line entry points, for the pipeline binary to
// mount as subcommands.
package mococli

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"pipeline/internal/cli"
	"pipeline/sink/moco"
	"pipeline/sink/moco/device"
	"pipeline/sink/moco/idxdata"
)

// EvalLinearMain is `pipeline eval linear`: it loads a MoCo checkpoint, computes frozen
// backbone features (encoder_q in eval mode) of a labelled train and test set given as IDX
// files (e.g. Fashion-MNIST), trains a linear classifier on them and prints one JSON object
// with the accuracies and the per-epoch curve to stdout; the curve is also printed to stderr
// as it trains.
func EvalLinearMain(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("eval linear", flag.ContinueOnError)
	fs.SetOutput(stderr)
	checkpoint := fs.String("checkpoint", "", "checkpoint file, or a checkpoint_dir (its newest checkpoint)")
	trainImages := fs.String("train-images", "", "IDX images of the training set (.gz allowed)")
	trainLabels := fs.String("train-labels", "", "IDX labels of the training set")
	testImages := fs.String("test-images", "", "IDX images of the test set")
	testLabels := fs.String("test-labels", "", "IDX labels of the test set")
	trainLimit := fs.Int("train-limit", 0, "use only the first N training images (0: all)")
	testLimit := fs.Int("test-limit", 0, "use only the first N test images (0: all)")
	backend := fs.String("backend", device.Auto, "auto (xla when a PJRT plugin is found, else go), xla or go")
	plugin := fs.String("plugin", "", "PJRT plugin for -backend xla (default: searched)")
	lc := moco.DefaultLinearConfig()
	fs.IntVar(&lc.Epochs, "epochs", lc.Epochs, "classifier epochs")
	fs.Float64Var(&lc.LR, "lr", lc.LR, "classifier learning rate (× 0.1 at 60 % and 80 % of the epochs)")
	fs.Float64Var(&lc.Momentum, "momentum", lc.Momentum, "SGD momentum")
	fs.Float64Var(&lc.WeightDecay, "weight-decay", lc.WeightDecay, "weight decay")
	fs.IntVar(&lc.Batch, "batch", lc.Batch, "classifier batch size")
	if err := fs.Parse(args); err != nil {
		return cli.Usage(err)
	}
	for name, v := range map[string]string{"-checkpoint": *checkpoint, "-train-images": *trainImages,
		"-train-labels": *trainLabels, "-test-images": *testImages, "-test-labels": *testLabels} {
		if v == "" {
			fs.Usage()
			return cli.Usagef("eval linear: %s is required", name)
		}
	}
	path, err := resolveCheckpoint(*checkpoint)
	if err != nil {
		return fmt.Errorf("eval linear: %w", err)
	}
	b, err := device.Open(*backend, *plugin)
	if err != nil {
		return fmt.Errorf("eval linear: %w", err)
	}
	trainer, err := moco.LoadTrainer(path, b)
	if err != nil {
		return fmt.Errorf("eval linear: %w", err)
	}
	train, err := idxdata.Read(*trainImages, *trainLabels, *trainLimit)
	if err != nil {
		return fmt.Errorf("eval linear: %w", err)
	}
	test, err := idxdata.Read(*testImages, *testLabels, *testLimit)
	if err != nil {
		return fmt.Errorf("eval linear: %w", err)
	}
	trainFeats, trainY, err := trainer.BackboneFeatures(IDXDataset(train))
	if err != nil {
		return fmt.Errorf("eval linear: training features: %w", err)
	}
	testFeats, testY, err := trainer.BackboneFeatures(IDXDataset(test))
	if err != nil {
		return fmt.Errorf("eval linear: test features: %w", err)
	}
	// The curve, as the classifier trains: a protocol that has not converged shows here.
	fmt.Fprintf(stderr, "%6s %8s %8s %10s %10s\n", "epoch", "lr", "loss", "train acc", "test acc")
	lc.OnEpoch = func(e moco.LinearEpoch) {
		fmt.Fprintf(stderr, "%6d %8.4g %8.4f %10.4f %10.4f\n", e.Epoch, e.LR, e.Loss, e.TrainAccuracy, e.TestAccuracy)
	}
	res, err := moco.LinearEval(trainFeats, trainY, testFeats, testY, trainer.Width(), lc)
	if err != nil {
		return fmt.Errorf("eval linear: %w", err)
	}
	out := map[string]any{"checkpoint": path, "step": trainer.Step(), "train_accuracy": res.TrainAccuracy,
		"test_accuracy": res.TestAccuracy, "train_images": train.N, "test_images": test.N,
		"classes": res.Classes, "feature_width": res.Width, "epochs": lc.Epochs, "lr": lc.LR, "curve": res.Curve}
	enc := json.NewEncoder(stdout)
	return enc.Encode(out)
}

func resolveCheckpoint(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if !st.IsDir() {
		return path, nil
	}
	latest, err := moco.LatestCheckpoint(path)
	if err != nil {
		return "", err
	}
	if latest == "" {
		return "", errors.New("no checkpoint in " + path)
	}
	return latest, nil
}

// IDXDataset serves grayscale IDX images as RGB labelled batches of up to 512.
func IDXDataset(im *idxdata.Images) moco.Dataset {
	return func(yield func(moco.LabeledBatch, error) bool) {
		const chunk = 512
		for start := 0; start < im.N; start += chunk {
			end := min(start+chunk, im.N)
			b := moco.LabeledBatch{N: end - start, H: im.H, W: im.W, Labels: im.Labels[start:end]}
			for i := start; i < end; i++ {
				b.Images = im.RGB(i, b.Images)
			}
			if !yield(b, nil) {
				return
			}
		}
	}
}
