using Cordon.Server.Images.Builds;
using Xunit;

namespace Cordon.Server.Tests;

/// <summary>The Dockerfile's syntax and Docker's word processing, as pure functions.</summary>
public sealed class DockerfileTests
{
    private static readonly Dictionary<string, string?> Vars = new() { ["NAME"] = "app", ["EMPTY"] = "", ["SPACED"] = "a b" };

    private static string? Lookup(string name) => Vars.GetValueOrDefault(name);

    [Fact]
    public void Parse_JoinsContinuationsSkipsCommentsAndSplitsStages()
    {
        var dockerfile = Dockerfile.Parse("""
            # a comment
            ARG BASE=debian
            FROM $BASE AS build
            RUN apt-get update && \
                # a comment between continuation lines
                apt-get install -y gcc

            COPY --from=other --chown=1000:1000 a b /dst/
            CMD ["make", "all"]
            from busybox
            entrypoint /bin/sh -c 'echo hi'
            """);

        Assert.Equal("ARG", Assert.Single(dockerfile.GlobalArgs).Keyword);
        Assert.Equal(2, dockerfile.Stages.Count);
        var build = dockerfile.Stages[0];
        Assert.Equal(("build", "$BASE"), (build.Name, build.Base));
        Assert.Equal(["RUN", "COPY", "CMD"], build.Instructions.Select(i => i.Keyword));
        Assert.Equal("apt-get update &&      apt-get install -y gcc", build.Instructions[0].Arguments);
        Assert.Equal(4, build.Instructions[0].Line);
        Assert.Equal(new Dictionary<string, string> { ["from"] = "other", ["chown"] = "1000:1000" }, build.Instructions[1].Flags);
        Assert.Equal("a b /dst/", build.Instructions[1].Arguments);
        Assert.Equal(["make", "all"], build.Instructions[2].Exec);
        Assert.Null(dockerfile.Stages[1].Name);
        Assert.Null(dockerfile.Stages[1].Instructions[0].Exec);
    }

    [Fact]
    public void Parse_TheEscapeDirective_ChangesTheContinuationCharacter()
    {
        var dockerfile = Dockerfile.Parse("# escape=`\nFROM busybox\nRUN echo a `\n    b\nCOPY C:\\x /y\n");

        Assert.Equal('`', dockerfile.Escape);
        Assert.Equal("echo a      b", dockerfile.Stages[0].Instructions[0].Arguments);
        Assert.Equal(@"C:\x /y", dockerfile.Stages[0].Instructions[1].Arguments);
    }

    [Fact]
    public void Parse_AJsonFormThatIsNotAnArrayOfStrings_IsTheShellForm()
    {
        var run = Dockerfile.Parse("FROM busybox\nRUN [not json]\n").Stages[0].Instructions[0];

        Assert.Null(run.Exec);
        Assert.Equal("[not json]", run.Arguments);
    }

    [Theory]
    [InlineData("", "no FROM")]
    [InlineData("RUN echo\nFROM busybox\n", "before the first FROM")]
    [InlineData("FROM busybox\nFROBNICATE\n", "'FROBNICATE' is not a Dockerfile instruction")]
    [InlineData("FROM busybox\nRUN --mount=type=cache,target=/x echo\n", "RUN --mount is not supported")]
    [InlineData("FROM busybox\nCOPY --exclude=x . /\n", "no option --exclude")]
    [InlineData("FROM busybox\nRUN <<EOF\necho\nEOF\n", "here-document")]
    [InlineData("FROM busybox\nONBUILD RUN echo\n", "ONBUILD is not supported")]
    [InlineData("FROM a AS x\nFROM b AS x\n", "used twice")]
    [InlineData("FROM --platform=linux/arm64 busybox\n", "linux/amd64 images only")]
    [InlineData("FROM busybox\nSHELL /bin/bash\n", "SHELL takes a JSON array")]
    [InlineData("FROM busybox\nRUN\n", "RUN needs arguments")]
    [InlineData("FROM a b c d\n", "FROM takes an image")]
    public void Parse_Refuses_WithTheReason(string text, string reason)
    {
        var ex = Assert.Throws<DockerfileException>(() => Dockerfile.Parse(text));

        Assert.Contains(reason, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_Refuses_TooManyInstructions()
        => Assert.Throws<DockerfileException>(() => Dockerfile.Parse("FROM busybox\n" + string.Concat(Enumerable.Repeat("ENV A=1\n", Dockerfile.MaxInstructions + 1))));

    [Theory]
    [InlineData("$NAME", "app")]
    [InlineData("${NAME}-x", "app-x")]
    [InlineData("pre$NAME.post", "preapp.post")]
    [InlineData("${MISSING:-fallback}", "fallback")]
    [InlineData("${EMPTY:-fallback}", "fallback")]
    [InlineData("${EMPTY-fallback}", "")]
    [InlineData("${NAME:+alt}", "alt")]
    [InlineData("${MISSING:+alt}", "")]
    [InlineData("${MISSING:-$NAME}", "app")]
    [InlineData("'$NAME'", "$NAME")]
    [InlineData("\"$NAME and ${SPACED}\"", "app and a b")]
    [InlineData("\\$NAME", "$NAME")]
    [InlineData("\"a \\\" b\"", "a \" b")]
    [InlineData("cost: $", "cost: $")]
    [InlineData("$MISSING", "")]
    public void Word_ExpandsVariablesAndRemovesQuotes(string text, string expected)
        => Assert.Equal(expected, ShellWords.Word(text, Lookup, '\\'));

    [Fact]
    public void Words_SplitOutsideQuotesOnly()
        => Assert.Equal(["A=1", "B=two words", "C=a b", "", "d"], ShellWords.Words("A=1 B=\"two words\" C=$SPACED '' d", Lookup, '\\'));

    [Theory]
    [InlineData("'open")]
    [InlineData("\"open")]
    [InlineData("${NAME")]
    [InlineData("${NAME%suffix}")]
    [InlineData("${MISSING:?is required}")]
    public void Word_Refuses_Malformed(string text)
        => Assert.Throws<DockerfileException>(() => ShellWords.Word(text, Lookup, '\\'));

    [Theory]
    [InlineData("*.txt", "a.txt", true)]
    [InlineData("*.txt", "dir/a.txt", false)]
    [InlineData("**/*.txt", "dir/sub/a.txt", true)]
    [InlineData("**/*.txt", "a.txt", true)]
    [InlineData("src/?.c", "src/a.c", true)]
    [InlineData("src/[ab].c", "src/c.c", false)]
    [InlineData("src/[^ab].c", "src/c.c", true)]
    [InlineData("a.b", "axb", false)]
    public void GlobPattern_MatchesAsDockerDoes(string pattern, string path, bool matches)
        => Assert.Equal(matches, GlobPattern.ToRegex(pattern).IsMatch(path));

    [Theory]
    [InlineData("./a/./b/", "a/b")]
    [InlineData("/a/b", "a/b")]
    [InlineData("a/../b", "b")]
    [InlineData(".", "")]
    [InlineData("../a", null)]
    [InlineData("a/../../b", null)]
    public void GlobPattern_Clean_NeverLeavesTheRoot(string path, string? expected)
        => Assert.Equal(expected, GlobPattern.Clean(path));

    [Fact]
    public void DockerIgnore_DirectoriesExceptionsAndTheLastMatchWins()
    {
        var ignore = new DockerIgnore("# comment\nnode_modules\n*.log\n!keep.log\n/build/\n**/secret*\n");

        Assert.True(ignore.Ignores("node_modules/dep/index.js"));
        Assert.True(ignore.Ignores("debug.log"));
        Assert.False(ignore.Ignores("keep.log"));
        Assert.False(ignore.Ignores("logs/debug.log")); // * does not cross directories
        Assert.True(ignore.Ignores("build/out.o"));
        Assert.True(ignore.Ignores("config/deep/secret.key"));
        Assert.False(ignore.Ignores("src/main.c"));
        Assert.True(ignore.HasExceptions);
    }
}
