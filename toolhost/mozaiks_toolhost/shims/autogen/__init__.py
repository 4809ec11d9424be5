"""A mozaiks-toolhost stand-in (see mozaiks_toolhost.shims)."""
