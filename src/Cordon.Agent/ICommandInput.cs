using Cordon.Protocol;

namespace Cordon.Agent;

/// <summary>Where a running command's input goes: a socket for plain commands, the terminal for pty commands.</summary>
internal interface ICommandInput
{
    ValueTask WriteAsync(ReadOnlyMemory<byte> data, CancellationToken cancellationToken);

    void Close();

    void Resize(TerminalSize size);
}
