using System.Text;

namespace Cordon.Server.Images.Builds;

/// <summary>Docker's word processing for Dockerfile arguments: quotes, the escape character and variables
/// (<c>$X</c>, <c>${X}</c>, <c>${X:-default}</c>, <c>${X:+alt}</c>, <c>${X-default}</c>, <c>${X+alt}</c>,
/// <c>${X:?message}</c>), as in ENV, ARG, COPY, WORKDIR, USER and FROM lines. RUN, CMD and ENTRYPOINT are not
/// processed: the shell in the sandbox does that.</summary>
public static class ShellWords
{
    /// <summary>One word: quotes removed, variables expanded, whitespace kept.</summary>
    /// <exception cref="DockerfileException">Unterminated quote or <c>${</c>, or a <c>${X:?message}</c> whose X is unset.</exception>
    public static string Word(string text, Func<string, string?> lookup, char escape)
        => string.Concat(new Lexer(text, lookup, escape).Process(split: false));

    /// <summary>Words split on whitespace outside quotes, each with quotes removed and variables expanded.</summary>
    public static IReadOnlyList<string> Words(string text, Func<string, string?> lookup, char escape)
        => new Lexer(text, lookup, escape).Process(split: true);

    private sealed class Lexer(string text, Func<string, string?> lookup, char escape)
    {
        private int _at;

        public List<string> Process(bool split)
        {
            var words = new List<string>();
            var word = new StringBuilder();
            var inWord = false;
            while (_at < text.Length)
            {
                var c = text[_at];
                if (split && char.IsWhiteSpace(c))
                {
                    _at++;
                    if (inWord)
                    {
                        words.Add(word.ToString());
                        word.Clear();
                        inWord = false;
                    }

                    continue;
                }

                inWord = true;
                ProcessOne(word, stopOn: null);
            }

            if (inWord || (!split && words.Count == 0))
            {
                words.Add(word.ToString());
            }

            return words;
        }

        /// <summary>Appends what the character at the cursor stands for (a quoted string, an escaped character, a
        /// variable's value, or itself) and moves past it.</summary>
        private void ProcessOne(StringBuilder word, char? stopOn)
        {
            var c = text[_at];
            if (c == escape)
            {
                _at++;
                if (_at < text.Length)
                {
                    word.Append(text[_at++]);
                }
                else
                {
                    word.Append(escape);
                }
            }
            else if (c == '\'' && stopOn is null)
            {
                var end = text.IndexOf('\'', _at + 1);
                if (end < 0)
                {
                    throw new DockerfileException("a single quote is not closed");
                }

                word.Append(text, _at + 1, end - _at - 1);
                _at = end + 1;
            }
            else if (c == '"' && stopOn is null)
            {
                _at++;
                while (true)
                {
                    if (_at >= text.Length)
                    {
                        throw new DockerfileException("a double quote is not closed");
                    }

                    var q = text[_at];
                    if (q == '"')
                    {
                        _at++;
                        break;
                    }

                    var next = _at + 1 < text.Length ? text[_at + 1] : '\0';
                    if (q == escape && (next is '"' or '$' || next == escape))
                    {
                        word.Append(text[_at + 1]);
                        _at += 2;
                    }
                    else if (q == '$')
                    {
                        word.Append(Variable());
                    }
                    else
                    {
                        word.Append(q);
                        _at++;
                    }
                }
            }
            else if (c == '$')
            {
                word.Append(Variable());
            }
            else
            {
                word.Append(c);
                _at++;
            }
        }

        /// <summary>The value of the variable at the cursor (<c>$</c>); a <c>$</c> not followed by a name is itself.</summary>
        private string Variable()
        {
            _at++; // '$'
            if (_at >= text.Length)
            {
                return "$";
            }

            if (text[_at] != '{')
            {
                var start = _at;
                while (_at < text.Length && (char.IsAsciiLetterOrDigit(text[_at]) || text[_at] == '_'))
                {
                    _at++;
                }

                return _at == start ? "$" : lookup(text[start.._at]) ?? "";
            }

            _at++; // '{'
            var nameStart = _at;
            while (_at < text.Length && (char.IsAsciiLetterOrDigit(text[_at]) || text[_at] == '_'))
            {
                _at++;
            }

            var name = text[nameStart.._at];
            if (name.Length == 0 || _at >= text.Length)
            {
                throw new DockerfileException("a ${ is not closed, or names no variable");
            }

            if (text[_at] == '}')
            {
                _at++;
                return lookup(name) ?? "";
            }

            var colon = text[_at] == ':';
            if (colon)
            {
                _at++;
            }

            if (_at >= text.Length || text[_at] is not ('-' or '+' or '?'))
            {
                throw new DockerfileException($"${{{name}…}} uses a modifier Cordon does not know (it knows :-, :+, :?, - and +)");
            }

            var modifier = text[_at++];
            var argument = new StringBuilder();
            while (true)
            {
                if (_at >= text.Length)
                {
                    throw new DockerfileException($"${{{name}…}} is not closed");
                }

                if (text[_at] == '}')
                {
                    _at++;
                    break;
                }

                ProcessOne(argument, stopOn: '}');
            }

            var value = lookup(name);
            var set = colon ? !string.IsNullOrEmpty(value) : value is not null;
            return modifier switch
            {
                '-' => set ? value! : argument.ToString(),
                '+' => set ? argument.ToString() : "",
                _ => set ? value! : throw new DockerfileException($"{name} is not set: {(argument.Length > 0 ? argument.ToString() : "it is required")}"),
            };
        }
    }
}
