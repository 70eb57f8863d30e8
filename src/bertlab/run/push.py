"""`bertlab push RUN_DIR --repo-id ID`: upload a run's saved weights (`<run_dir>/model/`) to the
Hugging Face hub with huggingface_hub, its model card (README.md, run/model_card.py) included.

Everything that would make the upload fail is checked first and said in one message: no saved
weights, a repo id the hub refuses, the hub offline or unreachable, no token. The upload itself
is huggingface_hub's (create_repo, then upload_folder: one commit, large files through LFS).
"""

from pathlib import Path

from bertlab.core.errors import BertlabError
from bertlab.core.network import unreachable
from bertlab.core.record import RESULT_FILE, read_result
from bertlab.run.model_card import CARD_FILE, write_model_card
from bertlab.run.saved_run import saved_model_dir

LOGIN = "log in with `hf auth login` (or set HF_TOKEN to a token with write access)"


class PushError(BertlabError):
    """The saved weights cannot be uploaded (offline, no token, a refused repo id or request)."""


def push(run_dir: Path, repo_id: str, private: bool = False) -> str:
    """Upload the run's model folder to the hub repo `repo_id` (created if absent); its URL."""
    from huggingface_hub import HfApi, constants, get_token
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError
    from huggingface_hub.utils import validate_repo_id

    folder = saved_model_dir(run_dir)
    try:
        validate_repo_id(repo_id)
    except HFValidationError as err:
        raise PushError(f"--repo-id {repo_id!r} is not a hub repo id ({err}); give NAME or OWNER/NAME.") from None
    if not (folder / CARD_FILE).is_file():  # saved by a bertlab from before the cards: write it now
        record = read_result(run_dir)
        if record is None or record.get("status") != "ok":
            raise PushError(
                f"{Path(run_dir) / RESULT_FILE} is missing or not a finished run's: the model card "
                f"({folder / CARD_FILE}) is written from it; push a finished run's folder."
            )
        write_model_card(folder, record)
    if constants.HF_HUB_OFFLINE:
        raise PushError(
            "the Hugging Face hub is offline here (HF_HUB_OFFLINE=1): nothing was uploaded; push from a machine "
            f"with network (copy {folder} there, or the run folder, and run the same command)."
        )
    why = unreachable(constants.ENDPOINT)
    if why is not None:
        raise PushError(
            f"the Hugging Face hub ({constants.ENDPOINT}) is unreachable from here ({why}): nothing was uploaded; "
            "push from a machine with network."
        )
    if get_token() is None:
        raise PushError(f"no Hugging Face token: {LOGIN}. Nothing was uploaded.")
    api = HfApi(endpoint=constants.ENDPOINT)
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        api.upload_folder(
            folder_path=str(folder),
            repo_id=repo_id,
            repo_type="model",
            commit_message=f"bertlab push {Path(run_dir).name}",
        )
    except HfHubHTTPError as err:
        status = getattr(err.response, "status_code", None)
        hint = f"; {LOGIN}" if status in (401, 403) else ""
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise PushError(f"the hub refused the upload to {repo_id} ({first}){hint}.") from None
    return str(url)
