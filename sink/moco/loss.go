package moco

import (
	"github.com/gomlx/gomlx/pkg/core/dtypes"
	. "github.com/gomlx/gomlx/pkg/core/graph"
)

// Normalize is F.normalize along the last axis: x / max(‖x‖₂, 1e-12).
func Normalize(x *Node) *Node {
	norm := Sqrt(ReduceAndKeep(Square(x), ReduceSum, -1))
	return Div(x, MaxScalar(norm, 1e-12))
}

// InfoNCE is the MoCo loss for queries q [N,D] and positive keys k [N,D] against the negatives
// in queue [K,D]: cross-entropy of logits [q·k | q·queue]/τ with target 0, averaged over the
// batch. acc is the fraction of rows whose positive logit is the largest (ties count for the
// positive, like arg-max picking the first).
func InfoNCE(q, k, queue *Node, temperature float64) (loss, acc *Node) {
	invT := Scalar(q.Graph(), dtypes.Float32, 1/temperature)
	pos := Mul(ReduceSum(Mul(q, k), -1), invT)                    // [N]
	neg := Mul(Einsum("nd,kd->nk", q, StopGradient(queue)), invT) // [N, K]
	logits := Concatenate([]*Node{InsertAxes(pos, -1), neg}, 1)   // [N, 1+K]
	peak := StopGradient(ReduceMax(logits, 1))                    // for a stable log-sum-exp
	lse := Add(Log(ReduceSum(Exp(Sub(logits, InsertAxes(peak, -1))), 1)), peak)
	loss = ReduceAllMean(Sub(lse, pos))
	hit := ConvertDType(GreaterOrEqual(pos, ReduceMax(neg, 1)), dtypes.Float32)
	return loss, ReduceAllMean(hit)
}
