package gateway

// Test hooks for the churn tests: the node-local state that a connection
// holds while it is open and must give back when it ends.

// OpenTails reports how many message tails are open on this node.
func (g *Gateway) OpenTails() int { return g.tails.Open() }

// AuthCacheLen reports how many decisions the authorizer cache of the
// configuration in force holds, expired ones included.
func (g *Gateway) AuthCacheLen() int { return g.gen.Load().auth.cache.Len() }
