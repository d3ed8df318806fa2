using Cordon.Runtime.Images;
using Xunit;

namespace Cordon.Runtime.Tests;

/// <summary>The host reads a file of an image (the trust bundle sandboxes get with the egress CA added) without
/// following anything the image's owner shaped.</summary>
public sealed class ImageFilesTests : IDisposable
{
    private const string Bundle = "etc/ssl/certs/ca-certificates.crt";
    private readonly string _root = Directory.CreateTempSubdirectory("cordon-imagefiles-").FullName;

    private string Layer(string name)
    {
        var path = Path.Combine(_root, name);
        Directory.CreateDirectory(Path.Combine(path, "etc/ssl/certs"));
        return path;
    }

    [Fact]
    public void TheTopMostLayerHoldingTheFileDecides()
    {
        var lower = Layer("lower");
        var upper = Layer("upper");
        File.WriteAllText(Path.Combine(lower, Bundle), "lower");
        Assert.Equal("lower", ImageFiles.ReadText([lower, upper], Bundle, 1024));

        File.WriteAllText(Path.Combine(upper, Bundle), "upper");
        Assert.Equal("upper", ImageFiles.ReadText([lower, upper], Bundle, 1024));
        Assert.Null(ImageFiles.ReadText([lower, upper], Bundle, 3)); // larger than allowed
    }

    [Fact]
    public void ALinkToAHostFile_IsNotFollowed_AndHidesLowerLayers()
    {
        var lower = Layer("lower");
        var upper = Layer("upper");
        File.WriteAllText(Path.Combine(lower, Bundle), "lower");
        var secret = Path.Combine(_root, "host-secret");
        File.WriteAllText(secret, "host secret");
        File.CreateSymbolicLink(Path.Combine(upper, Bundle), secret);

        Assert.Null(ImageFiles.ReadText([lower, upper], Bundle, 1024));
    }

    [Fact]
    public void ALinkedDirectoryOnTheWay_IsNotFollowed()
    {
        var layer = Path.Combine(_root, "layer");
        Directory.CreateDirectory(Path.Combine(layer, "etc"));
        var host = Path.Combine(_root, "host");
        Directory.CreateDirectory(Path.Combine(host, "certs"));
        File.WriteAllText(Path.Combine(host, "certs", "ca-certificates.crt"), "host file");
        Directory.CreateSymbolicLink(Path.Combine(layer, "etc", "ssl"), host);

        Assert.Null(ImageFiles.ReadText([layer], Bundle, 1024));
    }

    public void Dispose() => Directory.Delete(_root, recursive: true);
}
