"""The in-repo baseline of every comparison: the MIL ranking MLP of Sultani et al. (2018) on snippets, built from
a MilConfig (scripts/models/config.py); scripts/model.py's build_model returns it for the variant mil."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from scripts.models.config import MilConfig, ModelOutput, check_input, topk_mean


class MilBaseline(nn.Module):
    """The MIL ranking baseline (Sultani et al., 2018) on snippets.

    Per time step, spatially mean-pooled features -> FC hidden -> ReLU -> dropout -> FC embed -> FC 1
    = the snippet logit; the video logit is topk_mean of the snippet logits, as Mate's; the embedding
    is the temporal mean of the embed-d hidden layer. No MotionMap: `motion` is ignored.
    """

    def __init__(self, cfg: MilConfig):
        super().__init__()
        self.cfg = cfg
        self.fc1 = nn.Linear(cfg.in_channels, cfg.hidden)
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc2 = nn.Linear(cfg.hidden, cfg.embed)
        self.fc3 = nn.Linear(cfg.embed, 1)

    def forward(self, x: Tensor, motion: Tensor | None = None) -> ModelOutput:
        check_input(x, self.cfg.in_channels)
        B, C, T, H, W = x.shape
        p = x.mean(dim=(3, 4), dtype=torch.float32).transpose(1, 2)  # [B, T, C]
        e = self.fc2(self.dropout(F.relu(self.fc1(p))))  # [B, T, E]
        s = self.fc3(e).squeeze(-1)  # [B, T]
        return ModelOutput(video_logit=topk_mean(s), snippet_logits=s,
                           embedding=e.mean(dim=1), motion=x.new_zeros(B, T, H, W, dtype=torch.float32))
