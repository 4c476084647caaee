package source

import (
	"context"
	"sync"

	"pipeline/stages/objstore"
)

// shardPrefetcher opens a lane's next remote shard while the lane reads the current one, so
// that the request's round trip and the first chunks are in by the time the lane gets there.
// It owns the goroutines it starts and the files they open until a lane takes them; close
// stops the goroutines and closes the files no lane took.
type shardPrefetcher struct {
	store  *objstore.Store
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	pending map[string]*prefetched // by shard path
	wg      sync.WaitGroup
}

type prefetched struct {
	done chan struct{}
	file objstore.File
	err  error
}

func newShardPrefetcher(store *objstore.Store) *shardPrefetcher {
	ctx, cancel := context.WithCancel(context.Background())
	return &shardPrefetcher{store: store, ctx: ctx, cancel: cancel, pending: map[string]*prefetched{}}
}

// start opens path ahead, unless it is local or already being opened.
func (p *shardPrefetcher) start(path string) {
	if objstore.KindOf(path) == objstore.KindLocal || objstore.KindOf(path) == objstore.KindPipe {
		return // a local file needs no head start; a pipe would start its command twice
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.pending[path]; ok || p.ctx.Err() != nil {
		return
	}
	pf := &prefetched{done: make(chan struct{})}
	p.pending[path] = pf
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		defer close(pf.done)
		pf.file, pf.err = p.store.Open(p.ctx, path)
		if s, ok := pf.file.(interface{ StartStreaming() }); ok {
			s.StartStreaming()
		}
	}()
}

// open returns the file opened ahead for path, or opens it now.
func (p *shardPrefetcher) open(ctx context.Context, path string) (objstore.File, error) {
	p.mu.Lock()
	pf, ok := p.pending[path]
	delete(p.pending, path)
	p.mu.Unlock()
	if !ok {
		return p.store.Open(ctx, path)
	}
	select {
	case <-pf.done:
	case <-ctx.Done():
		p.mu.Lock()
		p.pending[path] = pf // close waits for its open and closes the file
		p.mu.Unlock()
		return nil, ctx.Err()
	}
	if pf.err != nil && p.ctx.Err() == nil {
		return p.store.Open(ctx, path) // a failed head start: the lane's own try decides
	}
	return pf.file, pf.err
}

// close stops the opens in progress and closes the files no lane took.
func (p *shardPrefetcher) close() {
	p.cancel()
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	for path, pf := range p.pending {
		if pf.file != nil {
			pf.file.Close()
		}
		delete(p.pending, path)
	}
}
