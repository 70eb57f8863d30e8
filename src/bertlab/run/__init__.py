"""One Hydra job from command line to result.json: entry point, fit-and-test, Trainer factory, the result record and its exit code."""
