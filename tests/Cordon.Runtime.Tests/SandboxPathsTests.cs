using Cordon.Protocol;
using Xunit;

namespace Cordon.Runtime.Tests;

public sealed class SandboxPathsTests
{
    [Theory]
    [InlineData("")]
    [InlineData("relative/file")]
    [InlineData("/tmp/../etc/passwd")]
    [InlineData("/..")]
    [InlineData("/tmp/a\0b")]
    public void Validate_UnsafeOrRelative_ReturnsProblem(string path)
        => Assert.NotNull(SandboxPaths.Validate(path));

    [Theory]
    [InlineData("/")]
    [InlineData("/home/user/file.txt")]
    [InlineData("/tmp/..hidden")]
    [InlineData("/a/./b")]
    public void Validate_AbsolutePath_Accepted(string path)
        => Assert.Null(SandboxPaths.Validate(path));

    [Theory]
    [InlineData("//tmp//x/", "/tmp/x")]
    [InlineData("/a/./b", "/a/b")]
    [InlineData("/", "/")]
    public void Normalize_CollapsesSlashesAndDots(string path, string expected)
        => Assert.Equal(expected, SandboxPaths.Normalize(path));

    [Fact]
    public void Validate_TooLong_ReturnsProblem()
        => Assert.NotNull(SandboxPaths.Validate("/" + new string('a', SandboxPaths.MaxLength)));
}
