package moco

import (
	"math"

	"github.com/gomlx/gomlx/pkg/core/dtypes"
	"github.com/gomlx/gomlx/pkg/core/shapes"
)

func sqrt(x float64) float64 { return math.Sqrt(x) }

func shapesMake(dtype dtypes.DType, dims []int) shapes.Shape { return shapes.Make(dtype, dims...) }
