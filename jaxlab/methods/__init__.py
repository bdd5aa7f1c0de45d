"""One folder per paper; methods never import each other."""
