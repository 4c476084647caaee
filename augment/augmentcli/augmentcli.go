// Package augmentcli is the `pipeline augment` command: it renders, replays and samples
// augmentation views of one image, to inspect a recipe or check parity with torchvision.
package augmentcli

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml"

	"pipeline/augment"
	"pipeline/augment/internal/imageio"
	"pipeline/internal/cli"
	"pipeline/pipeline"
)

const usage = `usage: pipeline augment MODE FLAGS

Render views of one image:
  pipeline augment --input IMG --recipe mocov2 --seed S [--views N] --out DIR
      writes DIR/NNN-GROUP-V.png (and its params as .json) and prints each view's
      params as one JSON line (the parity-vector schema)
Replay one view from its params:
  pipeline augment --input IMG --params P.json --out OUT.png [--recipe R --group G]
Sample params without rendering:
  pipeline augment --recipe mocov2 --sample N --seed S --width W --height H
Contact sheet:
  pipeline augment --input IMG --recipe mocov2 --grid 4x4 --out grid.png

--recipe is a recipe name (%s) or a .yaml file holding a views spec
(what goes under views: in a config).
Views come from sample indices --index, --index+1, ... of epoch --epoch; a view's
params depend only on (seed, epoch, index, group, view number).

Flags:
`

type options struct {
	input, recipe, out, params, group, grid string
	seed                                    uint64
	epoch                                   int
	index                                   int64
	views, sample, width, height            int
}

// Main runs the command with args (without the program and subcommand names).
func Main(args []string, stdout, stderr io.Writer) error {
	var o options
	fs := flag.NewFlagSet("pipeline augment", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.input, "input", "", "input image (PNG or JPEG)")
	fs.StringVar(&o.recipe, "recipe", "", "recipe name or YAML spec file")
	fs.StringVar(&o.out, "out", "", "output folder (views), or PNG file (--params, --grid)")
	fs.StringVar(&o.params, "params", "", "JSON params of one view to replay")
	fs.StringVar(&o.group, "group", "", "with --params and --recipe: the group whose op order to use (default: the first)")
	fs.StringVar(&o.grid, "grid", "", "contact sheet of COLSxROWS views, e.g. 4x4")
	fs.Uint64Var(&o.seed, "seed", 0, "run seed")
	fs.IntVar(&o.epoch, "epoch", 0, "epoch")
	fs.Int64Var(&o.index, "index", 0, "first sample index")
	fs.IntVar(&o.views, "views", 0, "number of views to write (default: all views of one sample)")
	fs.IntVar(&o.sample, "sample", 0, "print N sampled param records without rendering")
	fs.IntVar(&o.width, "width", 0, "image width for --sample")
	fs.IntVar(&o.height, "height", 0, "image height for --sample")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), usage, strings.Join(augment.Recipes(), ", "))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return cli.Usage(err)
	}
	if fs.NArg() > 0 {
		return cli.Usagef("unexpected argument %q (see --help)", fs.Arg(0))
	}
	modes := 0
	for _, on := range []bool{o.params != "", o.sample > 0, o.grid != ""} {
		if on {
			modes++
		}
	}
	if modes > 1 {
		return cli.Usagef("--params, --sample and --grid are different modes: give one")
	}
	switch {
	case o.params != "":
		return replay(o, stderr)
	case o.sample != 0 || o.width != 0 || o.height != 0:
		return sample(o, stdout)
	case o.grid != "":
		return grid(o, stderr)
	default:
		return render(o, stdout, stderr)
	}
}

func require(flags map[string]string) error {
	for _, name := range []string{"input", "recipe", "out"} {
		if v, ok := flags[name]; ok && v == "" {
			return cli.Usagef("--%s is required in this mode (see --help)", name)
		}
	}
	return nil
}

// loadRecipe builds a named recipe, or the spec in a YAML file.
func loadRecipe(name string) (*augment.Recipe, error) {
	spec := augment.Spec{Recipe: name}
	if strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml") {
		raw, err := os.ReadFile(name)
		if err != nil {
			return nil, err
		}
		spec = augment.Spec{}
		if err := yaml.Unmarshal(raw, &spec); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	r, err := augment.Build(spec)
	if err != nil {
		return nil, fmt.Errorf("--recipe %s: %w", name, err)
	}
	return r, nil
}

// viewRef is one rendered view and where it came from.
type viewRef struct {
	index  int64
	group  string
	view   int
	image  pipeline.Image
	params pipeline.ViewParams
}

// collect renders n views (all views of one sample when n is 0) from successive samples.
func collect(r *augment.Recipe, o options, src pipeline.Image, n int) ([]viewRef, error) {
	perSample := 0
	for _, g := range r.Groups() {
		perSample += g.Views
	}
	if n <= 0 {
		n = perSample
	}
	var out []viewRef
	for idx := o.index; len(out) < n; idx++ {
		groups, err := r.Views(o.seed, pipeline.Meta{Index: idx, Epoch: o.epoch}, src, true)
		if err != nil {
			return nil, err
		}
		for _, g := range groups {
			for v := range g.Views {
				if len(out) < n {
					out = append(out, viewRef{idx, g.Name, v, g.Views[v], g.Params[v]})
				}
			}
		}
	}
	return out, nil
}

func render(o options, stdout, stderr io.Writer) error {
	if err := require(map[string]string{"input": o.input, "recipe": o.recipe, "out": o.out}); err != nil {
		return err
	}
	r, err := loadRecipe(o.recipe)
	if err != nil {
		return err
	}
	src, err := imageio.Load(o.input)
	if err != nil {
		return err
	}
	views, err := collect(r, o, src, o.views)
	if err != nil {
		return fmt.Errorf("%s: %w", o.input, err)
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	for _, v := range views {
		line, err := json.Marshal(v.params)
		if err != nil {
			return err
		}
		base := filepath.Join(o.out, fmt.Sprintf("%06d-%s-%d", v.index, v.group, v.view))
		if err := imageio.WritePNG(base+".png", v.image); err != nil {
			return err
		}
		if err := os.WriteFile(base+".json", append(line, '\n'), 0o644); err != nil {
			return err
		}
		if _, err := fmt.Fprintf(stdout, "%s\n", line); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "wrote %s.png\n", base)
	}
	return nil
}

func replay(o options, stderr io.Writer) error {
	if err := require(map[string]string{"input": o.input, "out": o.out}); err != nil {
		return err
	}
	raw, err := os.ReadFile(o.params)
	if err != nil {
		return err
	}
	var p pipeline.ViewParams
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return fmt.Errorf("%s: %w", o.params, err)
	}
	if p.Size[0] < 1 || p.Size[1] < 1 || p.Size[0] > augment.MaxViewSide || p.Size[1] > augment.MaxViewSide {
		return fmt.Errorf("%s: size %v: want [height, width] of 1 to %d", o.params, p.Size, augment.MaxViewSide)
	}
	src, err := imageio.Load(o.input)
	if err != nil {
		return err
	}
	var view pipeline.Image
	if o.recipe != "" {
		r, err := loadRecipe(o.recipe)
		if err != nil {
			return err
		}
		group := o.group
		if group == "" {
			group = r.Groups()[0].Name
		}
		view, err = r.ReplayGroup(src, group, p)
		if err != nil {
			return fmt.Errorf("%s: %w", o.params, err)
		}
	} else {
		if o.group != "" {
			return cli.Usagef("--group needs --recipe")
		}
		if view, err = augment.Replay(src, p); err != nil {
			return fmt.Errorf("%s: %w", o.params, err)
		}
	}
	if err := imageio.WritePNG(o.out, view); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote %s\n", o.out)
	return nil
}

func sample(o options, stdout io.Writer) error {
	if o.recipe == "" || o.sample < 1 || o.width < 1 || o.height < 1 {
		return cli.Usagef("--sample N needs --recipe, N >= 1, --width W >= 1 and --height H >= 1")
	}
	r, err := loadRecipe(o.recipe)
	if err != nil {
		return err
	}
	printed := 0
	for idx := o.index; printed < o.sample; idx++ {
		for _, g := range r.SampleParams(o.seed, o.epoch, idx, o.width, o.height) {
			for _, p := range g {
				if printed == o.sample {
					return nil
				}
				line, err := json.Marshal(p)
				if err != nil {
					return err
				}
				if _, err := fmt.Fprintf(stdout, "%s\n", line); err != nil {
					return err
				}
				printed++
			}
		}
	}
	return nil
}

// parseGrid reads "COLSxROWS".
func parseGrid(s string) (cols, rows int, err error) {
	c, r, ok := strings.Cut(strings.ToLower(s), "x")
	if ok {
		cols, err = strconv.Atoi(c)
		if err == nil {
			rows, err = strconv.Atoi(r)
		}
	}
	if !ok || err != nil || cols < 1 || rows < 1 || cols > 1024 || rows > 1024 || cols*rows > 1024 {
		return 0, 0, cli.Usagef("--grid %q: want COLSxROWS such as 4x4 (at most 1024 cells)", s)
	}
	return cols, rows, nil
}

// grid writes a contact sheet: views in reading order, each centred in a cell as large as the
// largest view, on a dark background with 4-pixel gutters.
func grid(o options, stderr io.Writer) error {
	if err := require(map[string]string{"input": o.input, "recipe": o.recipe, "out": o.out}); err != nil {
		return err
	}
	cols, rows, err := parseGrid(o.grid)
	if err != nil {
		return err
	}
	r, err := loadRecipe(o.recipe)
	if err != nil {
		return err
	}
	src, err := imageio.Load(o.input)
	if err != nil {
		return err
	}
	views, err := collect(r, o, src, cols*rows)
	if err != nil {
		return fmt.Errorf("%s: %w", o.input, err)
	}
	const gap = 4
	cellW, cellH := 0, 0
	for _, g := range r.Groups() {
		cellW, cellH = max(cellW, g.Width), max(cellH, g.Height)
	}
	sheet := pipeline.Image{Width: cols*cellW + (cols+1)*gap, Height: rows*cellH + (rows+1)*gap}
	sheet.Pix = make([]uint8, sheet.Bytes())
	for i := range sheet.Pix {
		sheet.Pix[i] = 32
	}
	for i, v := range views {
		x0 := gap + (i%cols)*(cellW+gap) + (cellW-v.image.Width)/2
		y0 := gap + (i/cols)*(cellH+gap) + (cellH-v.image.Height)/2
		for y := range v.image.Height {
			dst := sheet.Pix[(y0+y)*sheet.Stride()+x0*3:]
			copy(dst[:v.image.Stride()], v.image.Pix[y*v.image.Stride():(y+1)*v.image.Stride()])
		}
	}
	if err := imageio.WritePNG(o.out, sheet); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "wrote %s (%d views)\n", o.out, len(views))
	return nil
}
