"""The `bertlab` command. Each subcommand is one `add_<name>(subparsers)` function that
registers its parser and sets `func`; add a new one to COMMANDS.

    bertlab train [overrides]          = python train.py [overrides] (-m, --cfg job, ... as Hydra reads them)
    bertlab --version
    bertlab report multirun/2024-05-01/10-00-00 [more sweep folders] [--out DIR] [--threshold 0.55]
    bertlab predict RUN_DIR --input FILE [--out FILE] [--encoding CODEC]
    bertlab evaluate RUN_DIR [key=value ...]
    bertlab push RUN_DIR --repo-id ID [--private]
    bertlab prepare --model NAME --task NAME --out DIR | --wordnet --out DIR | --backtranslate --task NAME --out FILE
    bertlab pretrain [pretrain=tapt] [task=rte model=minilm pretrain.lr=5e-5 ...]   (train.py's overrides)
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

EXIT_BAD_INPUT = 2


def run_report(args: argparse.Namespace) -> int:
    from bertlab.report import NoRunsError, build_report, render_terminal, write_report

    try:
        report = build_report(args.dirs, threshold=args.threshold)
    except (FileNotFoundError, NoRunsError) as err:
        print(f"bertlab report: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not report.tasks:
        print(
            f"bertlab report: no readable result.json under {', '.join(map(str, args.dirs))}; "
            f"{len(report.bad)} run folder(s) without one:",
            file=sys.stderr,
        )
        for bad in report.bad:
            print(f"  {bad.path}: {bad.reason}", file=sys.stderr)
        return EXIT_BAD_INPUT
    out = args.out or args.dirs[0]
    command = "bertlab report " + " ".join(shlex.quote(a) for a in args.argv)
    path = write_report(report, out, command)
    print(render_terminal(report))
    print(f"report: {path}")
    if args.wandb:  # the tables and figures beside the sweep's runs (report/wandb_run.py)
        from bertlab.core.errors import ConfigError
        from bertlab.report.wandb_run import log_report

        try:
            print(f"W&B: the report as the run `report` in the sweep's group: {log_report(report, out, command)}")
        except ConfigError as err:  # a malformed key or W&B setting: one line, the report itself is written
            # the message names a run's keys; for the report, the same choice is the environment's
            print(f"bertlab report --wandb: {err} (Here: WANDB_MODE=offline, or leave out --wandb.)", file=sys.stderr)
            return EXIT_BAD_INPUT
    return 0


def add_report(subparsers) -> None:
    parser = subparsers.add_parser(
        "report",
        help="compare the settings of one or more sweeps across seeds",
        description="Read every result.json under the folders and write report.md, box plots, curves "
        "and runs.csv next to them (into the first folder unless --out); print the main table.",
    )
    parser.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help="sweep (or run) folders")
    parser.add_argument("--out", type=Path, default=None, help="where to write the report (default: the first DIR)")
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="a run scoring below this main test metric counts as failed, for every task "
        "(default: at or below each run's majority-class / constant predictor score; the paper counts RTE "
        "runs below 55%% accuracy: --threshold 0.55)",
    )
    parser.add_argument(
        "--wandb",
        action="store_true",
        help="also log the tables and figures to W&B, as a run named `report` in the sweep's group "
        "(offline without an API key: sync with `wandb sync`)",
    )
    parser.set_defaults(func=run_report)


def run_prepare(args: argparse.Namespace) -> int:
    from bertlab.core.errors import BertlabError
    from bertlab.data.prepare import prepare

    if args.backtranslate or args.wordnet:
        return run_prepare_augment(args)
    if not args.model and not args.task:
        print("bertlab prepare: nothing to download; give --model and/or --task", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        lines = prepare(args.model, args.task, args.out)
    except BertlabError as err:
        print(f"bertlab prepare: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print("ready for offline runs (HF_HUB_OFFLINE=1); use these overrides:\n  " + "\n  ".join(lines))
    return 0


def run_prepare_augment(args: argparse.Namespace) -> int:
    """--wordnet (EDA's synonyms) or --backtranslate (a paraphrase file): data/synonyms.py, data/backtranslate.py."""
    from bertlab.core.errors import BertlabError

    if args.backtranslate and args.wordnet or args.model or (args.wordnet and args.task):
        print(
            "bertlab prepare: --wordnet and --backtranslate are used alone: "
            "`--wordnet --out DIR`, or `--backtranslate --task TASK --out FILE`",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    try:
        if args.wordnet:
            from bertlab.data.synonyms import download_wordnet

            line = f"augment=eda augment.wordnet_dir={download_wordnet(args.out)}"
        else:
            from bertlab.data.backtranslate import DEFAULT_MODELS, write_backtranslations

            if len(args.task) != 1:
                print("bertlab prepare: --backtranslate needs one --task, e.g. --task rte", file=sys.stderr)
                return EXIT_BAD_INPUT
            path, count = write_backtranslations(
                args.task[0],
                args.out,
                models=tuple(args.translation_models or DEFAULT_MODELS),
                data_dir=args.data_dir,
                num_aug=args.num_aug,
            )
            print(f"{count} paraphrases written")
            data_dir = f" task.data_dir={args.data_dir.expanduser().resolve()}" if args.data_dir else ""
            line = f"task={args.task[0]}{data_dir} augment=backtranslation augment.file={path}"
    except BertlabError as err:
        print(f"bertlab prepare: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"ready; use these overrides:\n  {line}")
    return 0


def add_prepare(subparsers) -> None:
    parser = subparsers.add_parser(
        "prepare",
        help="download the models and GLUE tasks of a sweep into a local cache (for offline nodes)",
        description="Download models (conf/model names or hub ids) and GLUE tasks (conf/task names) once; "
        "runs then read them offline with model.name_or_path=DIR and task.data_dir=DIR. For data augmentation: "
        "--wordnet (augment=eda's synonyms) and --backtranslate (augment=backtranslation's file).",
    )
    parser.add_argument("--model", nargs="+", action="extend", default=[], help="e.g. bert-large-uncased")
    parser.add_argument("--task", nargs="+", action="extend", default=[], help="e.g. rte mrpc stsb cola")
    parser.add_argument(
        "--out",
        type=Path,
        required=True,
        help="cache folder (shared with the compute nodes); --backtranslate: the file",
    )
    # data augmentation (augment=eda / augment=backtranslation): need network, run once
    parser.add_argument("--wordnet", action="store_true", help="download WordNet (nltk) for augment=eda into --out")
    parser.add_argument(
        "--backtranslate",
        action="store_true",
        help="write paraphrases of one --task's training pool (MarianMT, to a pivot language and back) to --out",
    )
    parser.add_argument(
        "--translation-models",
        nargs=2,
        default=None,
        metavar=("TO_PIVOT", "BACK"),
        help="--backtranslate: the two hub models or folders (default: Helsinki-NLP/opus-mt-en-de opus-mt-de-en, "
        "English -> German -> English)",
    )
    parser.add_argument("--num-aug", type=int, default=1, help="--backtranslate: paraphrases per text (best beams)")
    parser.add_argument("--data-dir", type=Path, default=None, help="--backtranslate: the task's GLUE folder")
    parser.set_defaults(func=run_prepare)


def run_predict(args: argparse.Namespace) -> int:
    from bertlab.core.errors import BertlabError
    from bertlab.run.predict import predict

    try:
        out = predict(args.run_dir, args.input, args.out, args.encoding)
    except BertlabError as err:
        print(f"bertlab predict: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if out is not None:
        print(f"predictions: {out}")
    return 0


def add_predict(subparsers) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="predict labels (and class probabilities) or scores for new texts with a run's saved weights",
        description="Read a CSV, TSV or JSONL file with the run's task.text_fields columns and write each row "
        "with its prediction (label name and prob_<label> columns, or the score). Needs a run made with "
        "save_weights=true.",
    )
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run folder with model/ (save_weights=true)")
    parser.add_argument("--input", type=Path, required=True, metavar="FILE", help=".csv, .tsv or .jsonl, with a header")
    parser.add_argument(
        "--out",
        default=None,
        metavar="FILE",
        help="where to write (.csv, .tsv or .jsonl, by its extension); default: FILE's stem + .predictions "
        "beside it, in its format; - : stdout",
    )
    parser.add_argument(
        "--encoding",
        default="utf-8",
        metavar="CODEC",
        help="FILE's encoding, any Python codec (default utf-8; a byte-order mark is skipped), e.g. latin-1, cp1252",
    )
    parser.set_defaults(func=run_predict)


def run_evaluate(args: argparse.Namespace) -> int:
    from bertlab.core.errors import BertlabError
    from bertlab.core.record import read_result
    from bertlab.run.evaluate import PREFIX, evaluate

    try:
        metrics = evaluate(args.run_dir, args.overrides)
    except BertlabError as err:
        print(f"bertlab evaluate: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    recorded = (read_result(args.run_dir) or {}).get("metrics", {})
    for key, value in metrics.items():
        saved = recorded.get(f"{PREFIX}/{key.split('/', 1)[1]}")
        beside = f"   (the run's {PREFIX}: {saved:.4f})" if saved is not None and not args.overrides else ""
        print(f"  {key:<28} {value:.4f}{beside}")
    return 0


def add_evaluate(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="re-test a run's saved weights on its task's test split",
        description="Test the saved weights (save_weights=true) on the test split of the run's own config, "
        "with key=value overrides of that config (e.g. task.data_dir=DIR task.n_test=null).",
    )
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run folder with model/ (save_weights=true)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="keys of the run's config")
    parser.set_defaults(func=run_evaluate)


def run_push(args: argparse.Namespace) -> int:
    from bertlab.core.errors import BertlabError
    from bertlab.run.push import push

    try:
        url = push(args.run_dir, args.repo_id, private=args.private)
    except BertlabError as err:
        print(f"bertlab push: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"uploaded: {url}")
    return 0


def add_push(subparsers) -> None:
    parser = subparsers.add_parser(
        "push",
        help="upload a run's saved weights and model card to the Hugging Face hub",
        description="Upload <RUN_DIR>/model (save_weights=true: the weights, tokenizer, bertlab.yaml and the model "
        "card README.md) to the hub repo ID, created when absent. Needs network and a token (hf auth login).",
    )
    parser.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run folder with model/ (save_weights=true)")
    parser.add_argument("--repo-id", required=True, metavar="ID", help="the hub repo: NAME or OWNER/NAME")
    parser.add_argument("--private", action="store_true", help="create the repo private (when it does not exist)")
    parser.set_defaults(func=run_push)


def run_pretrain(args: argparse.Namespace) -> int:
    """The further pre-training stages of `python train.py <overrides>`, alone: the same config, the
    same corpus (the task's drawn splits), the same cache; prints the override that fine-tunes from it."""
    from hydra import compose, initialize_config_dir

    from bertlab.config.keys import check_overrides
    from bertlab.core.devices import resolve_precision
    from bertlab.core.errors import BertlabError
    from bertlab.core.paths import CONF_DIR
    from bertlab.loggers.console import quiet_libraries
    from bertlab.pretrain.stage import further_pretrain
    from bertlab.run.checks import check_config
    from bertlab.run.fit import task_splits

    overrides = list(args.overrides)
    if not any(o.split("=", 1)[0].lstrip("+~") == "pretrain" for o in overrides):
        overrides.insert(0, "pretrain=tapt")  # the default of train.py is none: nothing to do
    try:
        check_overrides(overrides, CONF_DIR)
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            cfg = compose("train", overrides=overrides)
        check_config(cfg)
        if not cfg.pretrain.stages:
            print(f"bertlab pretrain: pretrain={cfg.pretrain.name} has no stage to run", file=sys.stderr)
            return EXIT_BAD_INPUT
        quiet_libraries()
        # the run's own examples, read by its task problem's reader: the corpus, so the cache key, a run has
        data = task_splits(cfg)
        run_dir = Path(cfg.pretrain.cache_dir or ".").expanduser()
        path, record = further_pretrain(
            cfg, data.drawn, run_dir, [], resolve_precision(cfg.trainer.precision), data.pools
        )
    except BertlabError as err:
        print(f"bertlab pretrain: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    # the same command line with train.py reuses this cache entry; or fine-tune from the folder itself:
    print(f"pretrain: {'reused' if record['reused'] else 'trained'}; fine-tune from it with (and pretrain=none):")
    print(f"model.name_or_path={shlex.quote(path)}")
    return 0


def add_pretrain(subparsers) -> None:
    parser = subparsers.add_parser(
        "pretrain",
        help="run the further pre-training stage of a run (pretrain=tapt|dapt|dapt_tapt) and cache it",
        description="Compose the config as `python train.py OVERRIDES` does (pretrain=tapt unless given), run its "
        "masked-LM stages (or find them in pretrain.cache_dir) and print the model.name_or_path=DIR override "
        "that fine-tunes from the result.",
    )
    parser.add_argument(
        "overrides", nargs="*", metavar="OVERRIDE", help="Hydra overrides, e.g. task=rte pretrain.lr=5e-5"
    )
    parser.set_defaults(func=run_pretrain)


def run_train(argv: list[str]) -> int:
    """`bertlab train ARGS` is `python train.py ARGS`: Hydra reads its command line from sys.argv,
    so the arguments after `train` become the whole command line (-m, hydra.* and --help included)."""
    from bertlab.run.entry import main as train_main

    sys.argv = [sys.argv[0], *argv]
    train_main()  # a failed run exits non-zero itself; its return value is the sweeper's metric
    return 0


def add_train(subparsers) -> None:
    # listed for `bertlab --help`; main() hands `train ...` to Hydra before argparse, which would
    # take Hydra's own flags (-m, --cfg) for bertlab's
    subparsers.add_parser(
        "train",
        help="fine-tune: the same command as `python train.py` (Hydra overrides, -m for a sweep)",
        description="Run `python train.py` with these arguments (see `bertlab train --help`).",
        add_help=False,
    )


COMMANDS = [add_train, add_report, add_prepare, add_pretrain, add_predict, add_evaluate, add_push]


def build_parser() -> argparse.ArgumentParser:
    from bertlab import __version__

    parser = argparse.ArgumentParser(prog="bertlab", description="bertlab tools for few-sample BERT fine-tuning.")
    parser.add_argument("--version", action="version", version=f"bertlab {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in COMMANDS:
        add(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["train"]:
        return run_train(argv[1:])
    args = build_parser().parse_args(argv)
    args.argv = argv[1:]
    show_run_lines()
    return args.func(args)


def show_run_lines() -> None:
    """The lines the run's code says (core/lines.py) on stdout, bare, as a run shows them: a command
    has no Hydra job logging to do it."""
    import logging

    from bertlab.core.lines import CurrentStdout, log

    if not log.handlers:
        handler = CurrentStdout()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)


if __name__ == "__main__":
    sys.exit(main())
