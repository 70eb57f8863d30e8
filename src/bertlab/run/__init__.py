"""One Hydra job from command line to result.json (its schema: core/record.py), one job per module:

entry.py     `python train.py` / `bertlab-train`: checks the command line, then starts the app
app.py       the @hydra.main function
inprocess.py bertlab.train(overrides): the same job in this process, which it leaves as it found it
job.py       the record's lifetime: result.json written whatever happens, the final table, the exit code
outcome.py   how a run ended: exception -> status, error, exit code
fit.py       the composition: splits -> model -> module -> callbacks (their order) -> fit -> tests
trainer.py   the Lightning Trainer: precision, validation interval
limits.py    the caps every stage obeys (debug=fast): every Trainer is built there
identity.py  the job's overrides, run name, W&B group and tags
folder.py    a run folder that cannot be written: one message and the fix
"""
