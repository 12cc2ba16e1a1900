"""Where pretrained timm weights come from: local files first, downloads only when allowed.

Resolution order for a model ``name`` (``arch`` or ``arch.tag``) when pretrained weights are asked:

1. ``pretrained_file``: an explicit ``.safetensors`` / ``.pth`` / ``.bin`` file (must exist);
2. ``$MVM_CORE_TIMM_WEIGHTS_DIR/<name>.safetensors`` (or ``.pth`` / ``.bin``): a folder of files
   named after the model, for command-line use;
3. the Hugging Face cache, looked up offline (files a previous download left there);
4. a download by timm, only with ``allow_download=True`` or ``MVM_CORE_ALLOW_DOWNLOADS=1``.

Otherwise :class:`WeightsNotFoundError` is raised at once (no network access, no retries), naming
the file to fetch and the ways to supply it. A found file is handed to timm with
``pretrained_cfg_overlay=dict(file=...)``, which adapts the classifier and input channels.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

WEIGHTS_DIR_ENV = "MVM_CORE_TIMM_WEIGHTS_DIR"
ALLOW_DOWNLOADS_ENV = "MVM_CORE_ALLOW_DOWNLOADS"
_SUFFIXES = (".safetensors", ".pth", ".bin")
_HF_FILES = ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")


class WeightsNotFoundError(FileNotFoundError):
    """Pretrained weights were asked for, but no local file has them and downloads are off."""


def downloads_allowed(allow_download: bool | None = None) -> bool:
    """``allow_download`` when given, else ``MVM_CORE_ALLOW_DOWNLOADS`` (off unless 1/true/yes)."""
    if allow_download is not None:
        return bool(allow_download)
    return os.environ.get(ALLOW_DOWNLOADS_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _pretrained_cfg(name: str):
    import timm
    from timm.models import get_pretrained_cfg

    arch = name.split(".", 1)[0]
    if not timm.is_model(arch):
        raise ValueError(f"timm has no model {arch!r}; see timm.list_models() or `mvm list backbones 'timm:*'`.")
    try:
        cfg = get_pretrained_cfg(name)
    except RuntimeError as error:  # unknown tag
        tags = timm.list_pretrained(f"{arch}.*")
        raise ValueError(f"{error} Pretrained tags of {arch}: {tags or 'none'}.") from None
    if cfg is None:
        raise ValueError(f"timm has no pretrained weights for {name!r}; use pretrained=False.")
    return cfg


def _from_hf_cache(hf_hub_id: str, filenames: tuple[str, ...], cache_dir: str | None) -> str | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    for filename in filenames:
        found = try_to_load_from_cache(hf_hub_id, filename, cache_dir=cache_dir)
        if isinstance(found, str) and os.path.isfile(found):
            return found
    return None


def find_weights(
    name: str,
    pretrained_file: str | os.PathLike | None = None,
    *,
    cache_dir: str | None = None,
) -> str | None:
    """The local file holding ``name``'s pretrained weights (steps 1-3 above), or None."""
    if pretrained_file is not None:
        path = Path(pretrained_file).expanduser()
        if not path.is_file():
            raise WeightsNotFoundError(
                f"pretrained_file {str(pretrained_file)!r} does not exist (or is not a file); pass"
                f" the path of a .safetensors/.pth file holding the weights of timm model {name!r}."
            )
        return str(path)
    folder = os.environ.get(WEIGHTS_DIR_ENV)
    if folder:
        for suffix in _SUFFIXES:
            candidate = Path(folder).expanduser() / f"{name}{suffix}"
            if candidate.is_file():
                return str(candidate)
    cfg = _pretrained_cfg(name)
    if cfg.hf_hub_id:
        filenames = (cfg.hf_hub_filename,) if cfg.hf_hub_filename else _HF_FILES
        return _from_hf_cache(cfg.hf_hub_id, filenames, cache_dir)
    return None


def pretrained_kwargs(
    name: str,
    *,
    pretrained: bool,
    pretrained_file: str | os.PathLike | None = None,
    allow_download: bool | None = None,
    cache_dir: str | None = None,
) -> dict[str, Any]:
    """Keyword arguments for ``timm.create_model`` that load weights from a local file.

    ``pretrained=False`` (and no file) gives random init. Raises :class:`WeightsNotFoundError`
    when weights are asked for but unavailable offline.
    """
    if pretrained_file is not None:
        pretrained = True
    if not pretrained:
        return {"pretrained": False}
    found = find_weights(name, pretrained_file, cache_dir=cache_dir)
    if found is not None:
        return {"pretrained": True, "pretrained_cfg_overlay": {"file": found}}
    if downloads_allowed(allow_download):
        return {"pretrained": True}
    cfg = _pretrained_cfg(name)
    tagged = f"{cfg.architecture}.{cfg.tag}" if cfg.tag else cfg.architecture
    sources = []
    if cfg.hf_hub_id:
        filename = cfg.hf_hub_filename or "model.safetensors"
        sources.append(f"Hugging Face repo {cfg.hf_hub_id!r}, file {filename!r} (for example"
                       f" `huggingface-cli download {cfg.hf_hub_id} {filename}` on a machine with"
                       " network)")
    if cfg.url:
        sources.append(f"URL {cfg.url}")
    where = " or ".join(sources) or "the model's publisher"
    raise WeightsNotFoundError(
        f"pretrained weights for timm model {tagged!r} are not available offline. Get them from"
        f" {where}, then either pass pretrained_file='/path/to/file', or save the file as"
        f" ${WEIGHTS_DIR_ENV}/{name}.safetensors (or .pth). To let timm download instead, pass"
        f" allow_download=True or set {ALLOW_DOWNLOADS_ENV}=1. For random init, pass"
        " pretrained=False."
    )
