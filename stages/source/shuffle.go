package source

import (
	"context"
	"io"
	"math/rand/v2"
)

// shuffler is a seeded shuffle buffer: it keeps up to size slot elements and emits a random
// one of them each time. Its choices depend only on its seed and on how many elements came in,
// never on their content, which is what lets a resume replay it without the bytes.
// Whole-shard errors pass straight through.
type shuffler struct {
	in     *merger
	size   int
	rng    *rand.Rand
	buf    []element
	inDone bool
}

func newShuffler(in *merger, size int, rng *rand.Rand) *shuffler {
	return &shuffler{in: in, size: max(size, 1), rng: rng}
}

func (s *shuffler) Next(ctx context.Context) (element, error) {
	for !s.inDone && len(s.buf) < s.size {
		el, err := s.in.Next(ctx)
		if err == io.EOF {
			s.inDone = true
			break
		}
		if err != nil {
			return element{}, err
		}
		if !el.slot() {
			return el, nil
		}
		s.buf = append(s.buf, el)
	}
	if len(s.buf) == 0 {
		return element{}, io.EOF
	}
	j := 0
	if len(s.buf) > 1 {
		j = s.rng.IntN(len(s.buf))
	}
	el := s.buf[j]
	last := len(s.buf) - 1
	s.buf[j] = s.buf[last]
	s.buf[last] = element{}
	s.buf = s.buf[:last]
	return el, nil
}

// Close releases the buffered samples and stops the readers.
func (s *shuffler) Close() {
	for _, el := range s.buf {
		el.release()
	}
	s.buf = nil
	s.in.Close()
}

// mix is SplitMix64's finaliser: it spreads (seed, epoch, rank, purpose) into independent
// generator streams.
func mix(vals ...uint64) uint64 {
	var h uint64 = 0x9e3779b97f4a7c15
	for _, v := range vals {
		h ^= v + 0x9e3779b97f4a7c15 + h<<6 + h>>2
		h = (h ^ h>>30) * 0xbf58476d1ce4e5b9
		h = (h ^ h>>27) * 0x94d049bb133111eb
		h ^= h >> 31
	}
	return h
}
