"""The 3D U-Net of MLPerf's image_segmentation benchmark (KiTS19), written from its description.

Five resolution levels with 32, 64, 128, 256, 320 filters and a 320-filter bottleneck one
level below the last (input 128^3 -> 4^3 at the bottleneck). Each level is two 3x3x3
convolutions without bias, each followed by instance normalisation (with affine parameters)
and ReLU; going down, the first convolution has stride 2; going up, a 2x2x2 transposed
convolution with stride 2 (with bias) halves the channels to the skip connection's, the two
are concatenated and two convolution blocks follow. A 1x1x1 convolution gives the class
logits. The loss is MLPerf's: cross entropy plus (1 - mean soft Dice over the classes).
Input extents must be multiples of 32 and at least 64 (instance norm needs a bottleneck of more
than one voxel); MLPerf trains on 128^3.

    net = UNet3D(in_channels=1, n_classes=3)      # 31.2 M parameters
    loss = DiceCELoss(n_classes=3)(net(x), y)     # x [N,1,D,H,W] float, y [N,1,D,H,W] integer
"""
import torch
from torch import nn
import torch.nn.functional as F

FILTERS = (32, 64, 128, 256, 320)


class ConvBlock(nn.Sequential):
    """conv 3^3 (no bias: the normalisation removes it) -> instance norm -> ReLU."""

    def __init__(self, cin, cout, stride=1):
        super().__init__(
            nn.Conv3d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False),
            nn.InstanceNorm3d(cout, affine=True),
            nn.ReLU(inplace=True),
        )


class Down(nn.Sequential):
    def __init__(self, cin, cout):
        super().__init__(ConvBlock(cin, cout, stride=2), ConvBlock(cout, cout))


class Up(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.up = nn.ConvTranspose3d(cin, cout, kernel_size=2, stride=2, bias=True)
        self.conv = nn.Sequential(ConvBlock(2 * cout, cout), ConvBlock(cout, cout))

    def forward(self, x, skip):
        return self.conv(torch.cat([self.up(x), skip], dim=1))


class UNet3D(nn.Module):
    def __init__(self, in_channels=1, n_classes=3, filters=FILTERS):
        super().__init__()
        f = list(filters)
        self.inp = nn.Sequential(ConvBlock(in_channels, f[0]), ConvBlock(f[0], f[0]))
        self.down = nn.ModuleList(Down(a, b) for a, b in zip(f[:-1], f[1:]))
        self.bottleneck = Down(f[-1], f[-1])
        # the first way up comes back from the bottleneck at the deepest width
        ups = [Up(f[-1], f[-1])] + [Up(b, a) for a, b in zip(reversed(f[:-1]), reversed(f[1:]))]
        self.up = nn.ModuleList(ups)
        self.out = nn.Conv3d(f[0], n_classes, kernel_size=1, bias=True)

    def forward(self, x):
        x = self.inp(x)
        skips = [x]
        for d in self.down:
            x = d(x)
            skips.append(x)
        x = self.bottleneck(x)
        for u, s in zip(self.up, reversed(skips)):
            x = u(x, s)
        return self.out(x)


class DiceCELoss(nn.Module):
    """Cross entropy + (1 - soft Dice averaged over all classes), computed in float32.

    logits [N,K,...], target [N,1,...] or [N,...] of class indices."""

    def __init__(self, n_classes=3, smooth=1e-6):
        super().__init__()
        self.k, self.smooth = n_classes, smooth

    def forward(self, logits, target):
        if target.dim() == logits.dim():
            target = target[:, 0]
        target = target.long()
        logits = logits.float()
        ce = F.cross_entropy(logits, target)
        prob = torch.softmax(logits, dim=1)
        onehot = F.one_hot(target, self.k).movedim(-1, 1).to(prob.dtype)
        axes = tuple(range(2, logits.dim()))
        inter = (prob * onehot).sum(axes)
        denom = prob.sum(axes) + onehot.sum(axes)
        dice = (2 * inter + self.smooth) / (denom + self.smooth)
        return ce + (1 - dice.mean())


def dice_per_class(logits, target, n_classes=3):
    """Hard Dice of argmax(logits) per class over the whole batch: a list of n_classes floats
    (nan for a class absent from both prediction and target)."""
    if target.dim() == logits.dim():
        target = target[:, 0]
    pred = logits.argmax(1)
    out = []
    for k in range(n_classes):
        p, t = pred == k, target == k
        den = (p.sum() + t.sum()).item()
        out.append(float("nan") if den == 0 else 2 * (p & t).sum().item() / den)
    return out


if __name__ == "__main__":  # a shape check on the CPU (64^3: the bottleneck is then 2^3)
    net = UNet3D()
    n = sum(p.numel() for p in net.parameters())
    with torch.no_grad():
        y = net(torch.randn(1, 1, 64, 64, 64))
    print(f"UNet3D: {n / 1e6:.2f} M parameters; 64^3 -> {tuple(y.shape)}")
