package tcp

// OpenConns returns how many connections the client holds open, over every worker address
// (metric reqplane_connections_open).
func (c *Client) OpenConns() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.conns)
}
