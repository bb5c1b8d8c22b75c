"""Ray actors: one CallActor per live call, the directory and warm pool, and the IO actors."""
