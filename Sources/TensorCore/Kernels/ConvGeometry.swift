/// The geometry of a 2-D convolution over NCHW images, with PyTorch's conventions.
///
/// The output extent is `⌊(in + 2·pad − dil·(k − 1) − 1) / stride⌋ + 1` per axis. The
/// same geometry describes a transposed convolution read backwards: its output is this
/// geometry's input and its input is this geometry's output.
public struct ConvGeometry: Hashable, Sendable {
    public var channels: Int
    public var inputHeight: Int, inputWidth: Int
    public var kernelHeight: Int, kernelWidth: Int
    public var strideH: Int, strideW: Int
    public var padH: Int, padW: Int
    public var dilationH: Int, dilationW: Int

    public init(
        channels: Int, input: (Int, Int), kernel: (Int, Int),
        stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0), dilation: (Int, Int) = (1, 1)
    ) {
        self.channels = channels
        (inputHeight, inputWidth) = input
        (kernelHeight, kernelWidth) = kernel
        (strideH, strideW) = stride
        (padH, padW) = padding
        (dilationH, dilationW) = dilation
    }

    public var outputHeight: Int {
        (inputHeight + 2 * padH - dilationH * (kernelHeight - 1) - 1) / strideH + 1
    }
    public var outputWidth: Int {
        (inputWidth + 2 * padW - dilationW * (kernelWidth - 1) - 1) / strideW + 1
    }
    /// Rows of the column matrix: channels × kernel area.
    public var columnRows: Int { channels * kernelHeight * kernelWidth }
    /// Output pixels per sample.
    public var outputArea: Int { outputHeight * outputWidth }
    public var inputArea: Int { inputHeight * inputWidth }

    /// Whether every extent is positive, so kernels can run.
    public var isValid: Bool {
        channels > 0 && inputHeight > 0 && inputWidth > 0 && kernelHeight > 0
            && kernelWidth > 0 && strideH > 0 && strideW > 0 && padH >= 0 && padW >= 0
            && dilationH > 0 && dilationW > 0
            && inputHeight + 2 * padH - dilationH * (kernelHeight - 1) - 1 >= 0
            && inputWidth + 2 * padW - dilationW * (kernelWidth - 1) - 1 >= 0
    }
}
