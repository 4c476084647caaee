package model

import (
	"fmt"

	. "github.com/gomlx/gomlx/pkg/core/graph"
	"github.com/gomlx/gomlx/pkg/ml/context"
)

// Arch describes an encoder: backbone, stem and head.
type Arch struct {
	Encoder string // "resnet50", "resnet18" or "small"
	Stem    string // "imagenet" (7x7/2 conv + max-pool) or "cifar" (3x3/1 conv, no pool); ResNets only
	MLP     bool   // MoCo v2 head: Linear(width, width), ReLU, Linear(width, Dim); else one Linear
	Dim     int    // output feature size (128)
}

// Validate reports an unknown encoder or stem.
func (a Arch) Validate() error {
	switch a.Encoder {
	case "resnet50", "resnet18", "small":
	default:
		return fmt.Errorf("unknown encoder %q: want resnet50, resnet18 or small", a.Encoder)
	}
	switch a.Stem {
	case "imagenet", "cifar", "":
	default:
		return fmt.Errorf("unknown stem %q: want imagenet or cifar", a.Stem)
	}
	if a.Dim <= 0 {
		return fmt.Errorf("dim must be positive, got %d", a.Dim)
	}
	return nil
}

// Width is the backbone's feature size (the input of the head).
func (a Arch) Width() int {
	switch a.Encoder {
	case "resnet50":
		return 2048
	case "resnet18":
		return 512
	default:
		return smallWidths[len(smallWidths)-1]
	}
}

// Forward maps normalised images [N, H, W, 3] (float32) to the head's output [N, Dim]. ctx's
// scope holds the encoder's variables ("backbone/...", "head/...").
func (a Arch) Forward(n *Net, ctx *context.Context, x *Node) *Node {
	return a.Head(n, ctx, a.Backbone(n, ctx, x))
}

// Backbone maps normalised images to pooled features [N, Width()].
func (a Arch) Backbone(n *Net, ctx *context.Context, x *Node) *Node {
	n.root = ctx.Scope()
	ctx = ctx.In("backbone")
	switch a.Encoder {
	case "small":
		return n.small(ctx, x)
	case "resnet18":
		return n.resnet(ctx, x, a.Stem, []int{2, 2, 2, 2}, false)
	case "resnet50":
		return n.resnet(ctx, x, a.Stem, []int{3, 4, 6, 3}, true)
	}
	panic(fmt.Sprintf("model: unknown encoder %q", a.Encoder))
}

// Head is the MLP head (or MoCo v1's single fc) on backbone features.
func (a Arch) Head(n *Net, ctx *context.Context, features *Node) *Node {
	n.root = ctx.Scope()
	ctx = ctx.In("head")
	if a.MLP {
		h := relu(n.Dense(ctx.In("fc1"), features, a.Width()))
		return n.Dense(ctx.In("fc2"), h, a.Dim)
	}
	return n.Dense(ctx.In("fc"), features, a.Dim)
}

// smallWidths are the channels of the small convnet's three conv layers.
var smallWidths = []int{16, 32, 64}

// small is three conv-BN-ReLU layers (stride 1, 2, 2) and global average pooling: a quick
// encoder for tests and small images.
func (n *Net) small(ctx *context.Context, x *Node) *Node {
	for i, c := range smallWidths {
		stride := 2
		if i == 0 {
			stride = 1
		}
		scope := ctx.Inf("conv%d", i)
		x = relu(n.BatchNorm(scope.In("bn"), n.Conv(scope, x, c, 3, stride)))
	}
	return ReduceMean(x, 1, 2)
}

// resnet is torchvision's ResNet (v1.5: the stride sits on the 3x3 conv of a bottleneck).
func (n *Net) resnet(ctx *context.Context, x *Node, stem string, blocks []int, bottleneck bool) *Node {
	sc := ctx.In("stem")
	if stem == "cifar" {
		x = relu(n.BatchNorm(sc.In("bn"), n.Conv(sc, x, 64, 3, 1)))
	} else {
		x = relu(n.BatchNorm(sc.In("bn"), n.Conv(sc, x, 64, 7, 2)))
		x = n.MaxPool3x3s2(x)
	}
	for stage, count := range blocks {
		planes := 64 << stage
		for b := range count {
			stride := 1
			if b == 0 && stage > 0 {
				stride = 2
			}
			block := ctx.Inf("layer%d", stage+1).Inf("block%d", b)
			if bottleneck {
				x = n.bottleneck(block, x, planes, stride)
			} else {
				x = n.basicBlock(block, x, planes, stride)
			}
		}
	}
	return ReduceMean(x, 1, 2)
}

func (n *Net) convBN(ctx *context.Context, x *Node, out, kernel, stride int) *Node {
	return n.BatchNorm(ctx.In("bn"), n.Conv(ctx, x, out, kernel, stride))
}

func (n *Net) shortcut(ctx *context.Context, x *Node, out, stride int) *Node {
	if stride == 1 && x.Shape().Dimensions[3] == out {
		return x
	}
	return n.convBN(ctx.In("downsample"), x, out, 1, stride)
}

func (n *Net) basicBlock(ctx *context.Context, x *Node, planes, stride int) *Node {
	y := relu(n.convBN(ctx.In("conv1"), x, planes, 3, stride))
	y = n.convBN(ctx.In("conv2"), y, planes, 3, 1)
	return relu(Add(y, n.shortcut(ctx, x, planes, stride)))
}

func (n *Net) bottleneck(ctx *context.Context, x *Node, planes, stride int) *Node {
	y := relu(n.convBN(ctx.In("conv1"), x, planes, 1, 1))
	y = relu(n.convBN(ctx.In("conv2"), y, planes, 3, stride))
	y = n.convBN(ctx.In("conv3"), y, planes*4, 1, 1)
	return relu(Add(y, n.shortcut(ctx, x, planes*4, stride)))
}

func relu(x *Node) *Node { return MaxScalar(x, 0.0) }
