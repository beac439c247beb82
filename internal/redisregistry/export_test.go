package redisregistry

// SetListBounds sets the index size up to which ListConnections sorts an
// index and the ids one walk examines, until the returned function
// restores them.
func SetListBounds(small int64, budget int) (restore func()) {
	oldSmall, oldBudget := smallSet, walkBudget
	smallSet, walkBudget = small, budget
	return func() { smallSet, walkBudget = oldSmall, oldBudget }
}
