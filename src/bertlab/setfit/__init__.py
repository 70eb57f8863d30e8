"""approach=setfit: SetFit (Tunstall et al. 2022) with the `setfit` library, on the run's own splits.

Stage 1 fine-tunes the sentence encoder on contrastive pairs drawn from the training split
(setfit's `ContrastiveDataset`, CosineSimilarityLoss); stage 2 fits a head on its embeddings
(scikit-learn's logistic regression, or setfit's differentiable `SetFitHead`). Both stages are the
library's own (`setfit.Trainer`): this package only maps the run's config onto setfit's
`TrainingArguments`, turns the run's examples into texts, and scores the model with the run's
metrics, so result.json, the report, `bertlab predict` and `evaluate` treat it as any other run.

A package of its own, not a stage of run/fit.py: SetFit has no Lightning training loop, no
optimizer or schedule of ours, and its model is a SentenceTransformer plus a head, not a Hugging
Face classifier.
"""
