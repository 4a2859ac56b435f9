"""PyTorch peers of audiozoo's spectrogram CNNs, for throughput comparisons in zoo.py.

The torchvision architectures (AlexNet, VGG11, GoogLeNet without aux heads, ResNet-18,
DenseNet-121, SqueezeNet 1.1), PANNs' Cnn14 and the SincNet reference, written out in plain torch with a 1-channel
stem as audiozoo's versions have, because torchvision's wheels do not load against every torch
build. `zoo.py` checks that each peer has exactly the parameter count of the audiozoo model it
stands beside, so the two compute the same network.
"""

from __future__ import annotations

import torch
from torch import nn


def conv_bn(cin: int, cout: int, kernel: int, stride: int = 1, eps: float = 1e-5) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
                         nn.BatchNorm2d(cout, eps=eps), nn.ReLU(inplace=True))


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(conv_bn(cin, cout, 3, stride), nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(cout))
        self.short = (nn.Identity() if stride == 1 and cin == cout else
                      nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))

    def forward(self, x):
        return torch.relu(self.body(x) + self.short(x))


def resnet18(num_classes: int) -> nn.Module:
    layers = [conv_bn(1, 64, 7, 2), nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for stage, width in enumerate((64, 128, 256, 512)):
        for i in range(2):
            layers.append(BasicBlock(cin, width, 2 if stage and not i else 1))
            cin = width
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, num_classes))


def alexnet(num_classes: int) -> nn.Module:
    convs = ((64, 11, 4, 2, True), (192, 5, 1, 2, True), (384, 3, 1, 1, False),
             (256, 3, 1, 1, False), (256, 3, 1, 1, True))
    layers, cin = [], 1
    for cout, kernel, stride, pad, pool in convs:
        layers += [nn.Conv2d(cin, cout, kernel, stride, pad), nn.ReLU(inplace=True)]
        layers += [nn.MaxPool2d(3, 2)] if pool else []
        cin = cout
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(6), nn.Flatten(), nn.Dropout(),
                         nn.Linear(256 * 36, 4096), nn.ReLU(inplace=True), nn.Dropout(),
                         nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Linear(4096, num_classes))


def vgg11(num_classes: int, batch_norm: bool = False) -> nn.Module:
    layers, cin = [], 1
    for item in (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"):
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(cin, item, 3, 1, 1), *([nn.BatchNorm2d(item)] if batch_norm else []),
                       nn.ReLU(inplace=True)]
            cin = item
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(7), nn.Flatten(),
                         nn.Linear(512 * 49, 4096), nn.ReLU(inplace=True), nn.Dropout(),
                         nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(),
                         nn.Linear(4096, num_classes))


class Fire(nn.Module):
    def __init__(self, cin: int, squeeze: int, expand: int):
        super().__init__()
        self.squeeze = nn.Sequential(nn.Conv2d(cin, squeeze, 1), nn.ReLU(inplace=True))
        self.e1 = nn.Sequential(nn.Conv2d(squeeze, expand, 1), nn.ReLU(inplace=True))
        self.e3 = nn.Sequential(nn.Conv2d(squeeze, expand, 3, 1, 1), nn.ReLU(inplace=True))

    def forward(self, x):
        x = self.squeeze(x)
        return torch.cat([self.e1(x), self.e3(x)], 1)


def squeezenet1_1(num_classes: int) -> nn.Module:
    pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)  # noqa: E731
    return nn.Sequential(
        nn.Conv2d(1, 64, 3, 2), nn.ReLU(inplace=True), pool(), Fire(64, 16, 64), Fire(128, 16, 64),
        pool(), Fire(128, 32, 128), Fire(256, 32, 128), pool(), Fire(256, 48, 192),
        Fire(384, 48, 192), Fire(384, 64, 256), Fire(512, 64, 256), nn.Dropout(),
        nn.Conv2d(512, num_classes, 1), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten())


class DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int = 32, bn_size: int = 4):
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(cin), nn.ReLU(inplace=True), nn.Conv2d(cin, bn_size * growth, 1, bias=False),
            nn.BatchNorm2d(bn_size * growth), nn.ReLU(inplace=True),
            nn.Conv2d(bn_size * growth, growth, 3, 1, 1, bias=False))

    def forward(self, x):
        return torch.cat([x, self.body(x)], 1)


def densenet121(num_classes: int) -> nn.Module:
    layers = [nn.Conv2d(1, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True),
              nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for i, count in enumerate((6, 12, 24, 16)):
        for _ in range(count):
            layers.append(DenseLayer(cin))
            cin += 32
        if i < 3:
            layers += [nn.BatchNorm2d(cin), nn.ReLU(inplace=True),
                       nn.Conv2d(cin, cin // 2, 1, bias=False), nn.AvgPool2d(2, 2)]
            cin //= 2
    return nn.Sequential(*layers, nn.BatchNorm2d(cin), nn.ReLU(inplace=True),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes))


class Inception(nn.Module):
    def __init__(self, cin, c1, c3r, c3, c5r, c5, pool_proj):
        super().__init__()
        bc = lambda i, o, k: conv_bn(i, o, k, eps=1e-3)  # noqa: E731
        self.b1 = bc(cin, c1, 1)
        self.b2 = nn.Sequential(bc(cin, c3r, 1), bc(c3r, c3, 3))
        self.b3 = nn.Sequential(bc(cin, c5r, 1), bc(c5r, c5, 3))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1, ceil_mode=True), bc(cin, pool_proj, 1))

    def forward(self, x):
        return torch.cat([self.b1(x), self.b2(x), self.b3(x), self.b4(x)], 1)


def inception_v1(num_classes: int) -> nn.Module:
    from audiozoo.models.inception import MODULES, POOL_AFTER

    layers = [conv_bn(1, 64, 7, 2, 1e-3), nn.MaxPool2d(3, 2, ceil_mode=True), conv_bn(64, 64, 1, eps=1e-3),
              conv_bn(64, 192, 3, eps=1e-3), nn.MaxPool2d(3, 2, ceil_mode=True)]
    cin = 192
    for key, widths in MODULES.items():
        layers.append(Inception(cin, *widths))
        cin = widths[0] + widths[2] + widths[4] + widths[5]
        if key in POOL_AFTER:
            layers.append(nn.MaxPool2d(POOL_AFTER[key], 2, ceil_mode=True))
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.2),
                         nn.Linear(cin, num_classes))


class Cnn14(nn.Module):
    def __init__(self, num_classes: int, mel_bins: int):
        super().__init__()
        self.bn0 = nn.BatchNorm2d(mel_bins)
        blocks, cin = [], 1
        for i, width in enumerate((64, 128, 256, 512, 1024, 2048)):
            blocks += [conv_bn(cin, width, 3), conv_bn(width, width, 3)]
            blocks += [nn.AvgPool2d(2)] if i < 5 else []
            blocks.append(nn.Dropout(0.2))
            cin = width
        self.blocks = nn.Sequential(*blocks)
        self.fc1, self.fc = nn.Linear(2048, 2048), nn.Linear(2048, num_classes)

    def forward(self, x):  # x [batch, 1, frames, mels]
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)
        x = self.blocks(x).mean(3)
        x = x.max(2).values + x.mean(2)
        return self.fc(torch.relu(self.fc1(x)))


CNN_PEERS = {
    "alexnet": alexnet, "vgg11": vgg11, "inception_v1": inception_v1, "resnet18": resnet18,
    "densenet121": densenet121, "squeezenet1_1": squeezenet1_1,
}


def cnn_peer(name: str, num_classes: int, mel_bins: int) -> nn.Module:
    """The torch network of audiozoo model `name` (a model.name), 1 input channel."""
    if name == "cnn14":
        return Cnn14(num_classes, mel_bins)
    return CNN_PEERS[name](num_classes)


def sincnet_peer(num_classes: int, samples: int) -> nn.Module:
    return SincNet(num_classes, samples)


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


class StdLayerNorm(nn.Module):
    """SincNet's layer norm: per-element gamma, beta; unbiased std over `dim`."""

    def __init__(self, shape, dim: int, eps: float = 1e-6):
        super().__init__()
        self.gamma, self.beta = nn.Parameter(torch.ones(shape)), nn.Parameter(torch.zeros(shape))
        self.dim, self.eps = dim, eps

    def forward(self, x):
        mean, std = x.mean(self.dim, keepdim=True), x.std(self.dim, keepdim=True)
        return self.gamma * (x - mean) / (std + self.eps) + self.beta


class SincNet(nn.Module):
    """The SincNet reference's CNN + DNN (mravanelli/SincNet dnn_models.py): sinc filters
    rebuilt from learned cut-offs every call, |.|, max pools, layer norms, leaky ReLUs, three
    2048-unit layers with batch norm, a linear classifier; audiozoo's SincNet defaults."""

    def __init__(self, num_classes: int, samples: int, filters: int = 80, taps: int = 251):
        super().__init__()
        self.low_hz = nn.Parameter(torch.linspace(30.0, 3000.0, filters))
        self.band_hz = nn.Parameter(torch.full((filters,), 100.0))
        half = (taps - 1) // 2
        n = torch.linspace(0, taps / 2 - 1, taps // 2)
        self.register_buffer("window", 0.54 - 0.46 * torch.cos(2 * torch.pi * n / taps))
        self.register_buffer("omega_t", 2 * torch.pi * torch.arange(-half, 0) / 16000.0)
        lengths, length = [], samples
        for k in (taps, 5, 5):
            length = (length - k + 1) // 3
            lengths.append(length)
        self.input_norm = StdLayerNorm(samples, -1)
        self.convs = nn.ModuleList([nn.Conv1d(filters, 60, 5), nn.Conv1d(60, 60, 5)])
        self.norms = nn.ModuleList([StdLayerNorm((c, n), -1) for c, n in
                                    zip((filters, 60, 60), lengths)])
        width = 60 * lengths[-1]
        self.dnn_norm = StdLayerNorm(width, -1)
        self.dense = nn.ModuleList([nn.Linear(i, 2048) for i in (width, 2048, 2048)])
        self.bns = nn.ModuleList([nn.BatchNorm1d(2048, momentum=0.1) for _ in range(3)])
        self.classifier = nn.Linear(2048, num_classes)

    def sinc_filters(self):
        low = 50.0 + self.low_hz.abs()
        high = torch.clamp(low + 50.0 + self.band_hz.abs(), 50.0, 8000.0)
        left = (torch.sin(high[:, None] * self.omega_t) - torch.sin(low[:, None] * self.omega_t))
        left = left / (self.omega_t / 2) * self.window
        band = (high - low)[:, None]
        taps = torch.cat([left, 2 * band, left.flip(1)], 1) / (2 * band)
        return taps[:, None, :]

    def forward(self, x):  # x [batch, samples]
        act = lambda h: nn.functional.leaky_relu(h, 0.2)  # noqa: E731
        x = self.input_norm(x)[:, None, :]
        x = nn.functional.conv1d(x, self.sinc_filters()).abs()
        for i, norm in enumerate(self.norms):
            if i:
                x = self.convs[i - 1](x)
            x = act(norm(nn.functional.max_pool1d(x, 3)))
        x = self.dnn_norm(x.flatten(1))
        for dense, bn in zip(self.dense, self.bns):
            x = act(bn(dense(x)))
        return self.classifier(x)
