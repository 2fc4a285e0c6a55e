package http2

// OpenConns returns how many connections the client holds open, over every worker address
// (metric reqplane_connections_open).
func (c *Client) OpenConns() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.conns)
}
