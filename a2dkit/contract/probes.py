"""Per-layer probes for the attention contract: where, layer by layer, the future reaches the past.

Model-agnostic: the decoder layers are the model's ``nn.ModuleList`` of ``num_hidden_layers``
modules, each called with the hidden state as its first argument (Llama, Qwen, Mistral, GPT-2, ...).
References: MDLM arXiv 2406.07524 (bidirectional denoiser); BD3LM arXiv 2503.09573.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


class _Stop(Exception):
    """Raised by a forward hook once the probed layer's output is captured (skips later layers)."""


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The stack of decoder layers: the first ModuleList of ``num_hidden_layers`` modules."""
    n = getattr(model.config, "num_hidden_layers", None)
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and n is not None and len(module) == n:
            return module
    raise ValueError(
        f"{type(model).__name__}: no nn.ModuleList of config.num_hidden_layers={n} decoder layers; "
        "the per-layer checks need the layers as one ModuleList"
    )


def hidden_states_per_layer(model: nn.Module, input_ids: torch.Tensor) -> list[torch.Tensor]:
    """The hidden state after each decoder layer (``output_hidden_states=True``), then the logits.

    Returns:
        ``num_hidden_layers + 1`` tensors: (B, L, H) per layer (the last one after the final
        norm, as transformers reports it), then (B, L, V) logits.
    """
    with torch.no_grad():
        out = model(input_ids, output_hidden_states=True)
    return [*out.hidden_states[1:], out.logits]


def layer_outputs(
    model: nn.Module,
    input_ids: torch.Tensor,
    stop_after: int | None = None,
    perturb: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> list[torch.Tensor]:
    """Output (B, L, H) of each decoder layer, in order, from one forward pass.

    Args:
        input_ids: (B, L) long.
        stop_after: index of the last layer to run (the forward stops there); default all.
        perturb: maps that last layer's input hidden state (B, L, H) to the one it gets instead.
    """
    layers = decoder_layers(model)
    last = len(layers) - 1 if stop_after is None else stop_after
    captured: list[torch.Tensor] = []

    def pre_hook(module, args, kwargs):
        if args:
            return (perturb(args[0]), *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": perturb(kwargs["hidden_states"])}

    def hook(module, args, output):
        captured.append(output[0] if isinstance(output, tuple) else output)
        if len(captured) > last:
            raise _Stop

    handles = [layer.register_forward_hook(hook) for layer in layers]
    if perturb is not None:
        handles.append(layers[last].register_forward_pre_hook(pre_hook, with_kwargs=True))
    try:
        with torch.no_grad():
            model(input_ids)
    except _Stop:
        pass
    finally:
        for handle in handles:
            handle.remove()
    return captured


def isolated_future_changes(model: nn.Module, input_ids: torch.Tensor, position: int = 1):
    """Per layer: how much the layer's output at positions <= ``position`` moves when *its own*
    input at later positions is perturbed (everything before that layer left as it was).

    A causal layer gives exactly 0 whatever the other layers do, so this catches a single causal
    layer anywhere in the stack (a token perturbation only catches the first causal layers).

    Returns:
        One max abs difference per decoder layer.
    """
    gen = torch.Generator().manual_seed(5)

    def perturb(h: torch.Tensor) -> torch.Tensor:  # (B, L, H): noise of the state's own scale
        noise = torch.randn(h.shape, generator=gen, dtype=torch.float64).to(h.dtype) * h.std()
        h = h.clone()
        h[:, position + 1 :] += noise[:, position + 1 :]
        return h

    base = layer_outputs(model, input_ids)  # one pass, every layer
    changes = []
    for index, out in enumerate(base):
        moved = layer_outputs(model, input_ids, stop_after=index, perturb=perturb)[index]
        diff = moved[:, : position + 1].double() - out[:, : position + 1].double()  # (B, p+1, H)
        changes.append(diff.abs().max().item())
    return changes
