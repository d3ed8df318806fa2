using Cordon.Runtime.Images;
using Xunit;

namespace Cordon.Runtime.Tests;

/// <summary>Registry references as the distribution grammar reads them, made fully qualified for skopeo.</summary>
public sealed class ImageReferenceTests
{
    [Theory]
    [InlineData("python:3.12", "docker.io/library/python:3.12", "python:3.12")]
    [InlineData("python", "docker.io/library/python:latest", "python:latest")]
    [InlineData("python:312", "docker.io/library/python:312", "python:312")]
    [InlineData("team/app", "docker.io/team/app:latest", "app:latest")]
    [InlineData("localhost/app:V1.2", "localhost/app:V1.2", "app:v1.2")]
    [InlineData("127.0.0.1:5000/a/b/c:t", "127.0.0.1:5000/a/b/c:t", "c:t")]
    [InlineData("ghcr.io/org/img_name-x.y@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "ghcr.io/org/img_name-x.y@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "img_name-x.y:0123456789ab")]
    [InlineData("registry.example.com/app:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "registry.example.com/app:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", "app:1")]
    public void Parse_QualifiesAndNames(string text, string qualified, string defaultName)
    {
        var reference = ImageReference.Parse(text);

        Assert.Equal(qualified, reference.ToString());
        Assert.Equal(defaultName, reference.DefaultName);
    }

    [Theory]
    [InlineData("")]
    [InlineData("-src-creds=x")]
    [InlineData("docker://python")]
    [InlineData("Team/app")]
    [InlineData("app:")]
    [InlineData("app@sha256:abc")]
    [InlineData("app@md5:0123456789abcdef0123456789abcdef")]
    [InlineData("a b")]
    [InlineData("host:99999999/app")]
    [InlineData("app/../etc")]
    public void Parse_RefusesWhatIsNotAReference(string text)
        => Assert.Throws<FormatException>(() => ImageReference.Parse(text));
}
