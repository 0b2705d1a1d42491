"""A day in the life of a two-region estate, played through Tandem's real code on the local runtime."""
