namespace Cordon.Runtime;

/// <summary>Collects the undo of each step of a multi-step creation; <see cref="RollbackAsync"/> runs them in
/// reverse, so a failure halfway leaves nothing behind.</summary>
internal sealed class UndoStack
{
    private readonly Stack<(string Step, Func<ValueTask> Undo)> _steps = new();

    public void Push(string step, Func<ValueTask> undo) => _steps.Push((step, undo));

    public void Push(string step, Action undo) => _steps.Push((step, () =>
    {
        undo();
        return ValueTask.CompletedTask;
    }
    ));

    /// <summary>Runs every undo, newest first; failures are collected, not thrown, so every step gets its turn.</summary>
    public async ValueTask<IReadOnlyList<string>> RollbackAsync()
    {
        var failures = new List<string>();
        while (_steps.TryPop(out var entry))
        {
            try
            {
                await entry.Undo();
            }
            catch (Exception ex)
            {
                failures.Add($"{entry.Step}: {ex.Message}");
            }
        }

        return failures;
    }

    /// <summary>Forgets the steps: the creation succeeded.</summary>
    public void Commit() => _steps.Clear();
}
