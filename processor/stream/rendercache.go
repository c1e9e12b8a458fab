package stream

import "sync"

// renderCacheSize is how many renderings a send stage keeps: the jobs of one
// email to several recipients carry the same template data and are produced
// together (one partition, by company), so they are rendered once.
const renderCacheSize = 1024

// rendered is what rendering one job's template data gave.
type rendered struct{ html, text, digest string }

// renderCache remembers the last renderings by template data. Rendering is a
// function of the data alone, so a hit is what rendering again would give;
// failures are not kept. It is safe for concurrent use; two workers may
// render the same data at once, and both keep the same result.
type renderCache struct {
	mu    sync.Mutex
	byKey map[string]rendered
	ring  []string // keys in insertion order; the oldest goes first
	next  int
}

func newRenderCache(size int) *renderCache {
	return &renderCache{byKey: make(map[string]rendered, size), ring: make([]string, 0, size)}
}

// render returns the rendering of data, from the cache or from fn.
func (c *renderCache) render(data string, fn func(data []byte) (html, text, digest string, err error)) (rendered, error) {
	c.mu.Lock()
	r, ok := c.byKey[data]
	c.mu.Unlock()
	if ok {
		return r, nil
	}
	html, text, digest, err := fn([]byte(data))
	if err != nil {
		return rendered{}, err
	}
	r = rendered{html, text, digest}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.byKey[data]; ok {
		return r, nil
	}
	if len(c.ring) < cap(c.ring) {
		c.ring = append(c.ring, data)
	} else {
		delete(c.byKey, c.ring[c.next])
		c.ring[c.next] = data
		c.next = (c.next + 1) % len(c.ring)
	}
	c.byKey[data] = r
	return r, nil
}
