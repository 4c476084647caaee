package augment

import (
	"hash/fnv"
	"math/bits"
	"math/rand/v2"
)

// viewRNG is the random stream of one view. It is seeded from (seed, epoch, sample index,
// group, view number) only, so a view's parameters never depend on which worker made it or
// in which order.
type viewRNG struct{ pcg rand.PCG }

func newViewRNG(seed uint64, epoch int, index int64, group uint64, view int) viewRNG {
	h1 := mix(seed ^ 0x9e3779b97f4a7c15)
	h1 = mix(h1 ^ uint64(epoch))
	h1 = mix(h1 ^ uint64(index))
	h2 := mix(h1 ^ group)
	h2 = mix(h2 ^ uint64(view))
	var r viewRNG
	r.pcg.Seed(h1, h2)
	return r
}

// mix is the splitmix64 finaliser: a bijection that spreads every input bit over the output.
func mix(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// groupKey hashes a group's name into the seed, so that renaming or reordering other groups
// does not change a group's views.
func groupKey(name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return h.Sum64()
}

// Float64 is uniform in [0, 1), as Python's random.random.
func (r *viewRNG) Float64() float64 { return float64(r.pcg.Uint64()>>11) * 0x1.0p-53 }

// Uniform is uniform in [lo, hi], computed as Python's random.uniform: lo + (hi-lo)*u.
func (r *viewRNG) Uniform(lo, hi float64) float64 { return lo + (hi-lo)*r.Float64() }

// IntIn is uniform over the integers lo..hi inclusive (torch.randint(lo, hi+1)).
func (r *viewRNG) IntIn(lo, hi int) int { return lo + int(r.uint64n(uint64(hi-lo)+1)) }

// uint64n is uniform in [0, n), without modulo bias (Lemire's method).
func (r *viewRNG) uint64n(n uint64) uint64 {
	hi, lo := bits.Mul64(r.pcg.Uint64(), n)
	if lo < n {
		thresh := -n % n
		for lo < thresh {
			hi, lo = bits.Mul64(r.pcg.Uint64(), n)
		}
	}
	return hi
}
