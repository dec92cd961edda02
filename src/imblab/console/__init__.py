"""What a user sees on the console while imblab works, and when it is done.

``progress``: a run's stages with their timings, on stderr, drawn only when stderr is a terminal.
``summary``: the closing lines of a run and of a sweep (ids, variant, key metrics, what to run next),
on stdout.
"""
