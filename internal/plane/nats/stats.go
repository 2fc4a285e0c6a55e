package nats

// OpenConns returns 1 while the client holds a connection that nats.go has not given up on
// (it may be reconnecting), else 0 (metric reqplane_connections_open).
func (c *Client) OpenConns() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil && !c.conn.nc.IsClosed() {
		return 1
	}
	return 0
}
