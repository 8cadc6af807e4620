"""The published extraction pipeline on the CPU, for benchmarks/bench_video.py --side_by_side. Runs in the
scratch venv of benchmarks/published_venv.py (pytorchvideo 0.1.5, torchvision), not in the repo's.

    <venv>/bin/python benchmarks/published_pipeline.py VIDEO WEIGHTS OUT.npy --threads 1 [--seed 0]

What AIx699/MATE's feat_extractor.py does to a video, with its own library calls: pytorchvideo's X3D-L
(hub builder) with the last block (the head) deleted; LabeledVideoDataset over the video with
UniformClipSampler(16 x 5 / 30 s) and a DataLoader of batch 1; per clip UniformTemporalSubsample(16),
x / 255, Normalize(0.45, 0.225), ShortSideScale(320), CenterCrop(320); the element-wise maximum of the
clips' [192, 16, 10, 10] maps. Unlike the original it runs on the CPU and takes its weights from WEIGHTS
(a state dict of the whole network, head included); when WEIGHTS does not exist, it writes a seeded
random one there first, so the repo's extractor can load the same network (--backbone_checkpoint).
Prints one JSON line: the seconds of the extraction loop (decoding, transforms, network), the clips.
"""
import argparse
import json
import os
import time

import numpy as np
import torch

NUM_FRAMES, SAMPLING_RATE, SIDE, CROP, CLOCK = 16, 5, 320, 320, 30
MEAN, STD = [0.45] * 3, [0.225] * 3


def clip_transform():
    from pytorchvideo.transforms import ApplyTransformToKey, ShortSideScale, UniformTemporalSubsample
    from torchvision.transforms import Compose, Lambda
    from torchvision.transforms.v2 import CenterCrop, Normalize

    channels_first = Lambda(lambda x: x.permute(1, 0, 2, 3))  # [C, T, H, W] <-> [T, C, H, W]
    return ApplyTransformToKey(key="video", transform=Compose([
        UniformTemporalSubsample(NUM_FRAMES), Lambda(lambda x: x / 255.0), channels_first, Normalize(MEAN, STD),
        ShortSideScale(size=SIDE), CenterCrop((CROP, CROP)), channels_first]))


def network(weights: str, seed: int) -> torch.nn.Module:
    import pytorchvideo.models.hub as hub

    torch.manual_seed(seed)
    model = hub.x3d_l(pretrained=False)
    if os.path.exists(weights):
        model.load_state_dict(torch.load(weights, map_location="cpu"))
    else:
        torch.save(model.state_dict(), weights)
    del model.blocks[-1]  # the head, as the published file does
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser("published_pipeline.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video")
    parser.add_argument("weights")
    parser.add_argument("out")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from pytorchvideo.data import LabeledVideoDataset, UniformClipSampler
    from torch.utils.data import DataLoader

    model = network(args.weights, args.seed)
    dataset = LabeledVideoDataset(labeled_video_paths=[(args.video, {"label": 1})],
                                  clip_sampler=UniformClipSampler(NUM_FRAMES * SAMPLING_RATE / CLOCK),
                                  transform=clip_transform(), decode_audio=False)
    pooled, clips = None, 0
    start = time.perf_counter()
    with torch.no_grad():
        for item in DataLoader(dataset, batch_size=1):
            y = model(item["video"]).numpy()[0]
            pooled = y if pooled is None else np.maximum(pooled, y)
            clips += 1
    seconds = time.perf_counter() - start
    np.save(args.out, pooled)
    print(json.dumps({"seconds": seconds, "clips": clips, "shape": list(pooled.shape)}))


if __name__ == "__main__":
    main()
