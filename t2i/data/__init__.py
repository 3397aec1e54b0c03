"""LightningDataModules. Every batch is a dict: `image` in [-1, 1] plus optional
`caption`, `word_vectors`, `tokens`, `length`, `attributes`, `targets`, `label`."""
