using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace DistTrain.Training.Optimization;

/// <summary>
/// TorchSharp's AdamW, step for step (0.107: decoupled decay, bias corrections, <c>exp_avg_sq.sqrt() / √bc₂ + ε</c>),
/// with every scalar operand and intermediate tensor held in a <c>using</c> local across its native call.
/// </summary>
/// <remarks>
/// Why: TorchSharp's own <c>AdamW.step</c> passes temporaries (<c>param.mul_(1 - lr * wd)</c>, <c>add_(grad, alpha: 1 - β₁)</c>)
/// that the GC may finalize while libtorch reads them; under a collection loop this failed within 70 steps with
/// "toDouble at c10/core/Scalar.h" inside <c>THSTensor_mul_scalar_</c> (GcStressSoakTests). State, options and
/// checkpoints are the base class's, so saved optimizer states load either way. amsgrad and maximize are not used here.
/// </remarks>
public sealed class KeptAliveAdamW(IEnumerable<AdamW.ParamGroup> groups, double lr, double beta1, double beta2, double eps, double weightDecay)
    : AdamW(groups, lr, beta1, beta2, eps, weightDecay)
{
    public override Tensor step(Func<Tensor>? closure = null) => _step<ParamGroup>(group =>
    {
        var o = (Options)group.Options;
        if (o.amsgrad == true || o.maximize == true) throw new NotSupportedException("amsgrad and maximize are not implemented");
        double beta1 = o.beta1!.Value, beta2 = o.beta2!.Value, lr = o.LearningRate!.Value;
        using var decay = (1 - lr * o.weight_decay!.Value).ToScalar();
        using var keep1 = beta1.ToScalar();
        using var take1 = (1 - beta1).ToScalar();
        using var keep2 = beta2.ToScalar();
        using var take2 = (1 - beta2).ToScalar();
        using var eps = o.eps!.Value.ToScalar();
        foreach (var param in group.Parameters)
        {
            var state = (State)_state[param.Handle];
            var grad = param.grad;
            if (grad is null) continue;
            state.step += 1;
            param.mul_(decay);
            double correction1 = 1 - Math.Pow(beta1, state.step);
            double correction2 = 1 - Math.Pow(beta2, state.step);
            state.exp_avg.mul_(keep1).add_(grad, take1);
            state.exp_avg_sq.mul_(keep2).addcmul_(grad, grad, take2);
            using var root2 = Math.Sqrt(correction2).ToScalar();
            // Held, not chained: step() runs outside any dispose scope, so a bare sqrt() result is referenced by
            // nothing while the division reads it, and its finalizer could free it (docs/reliability.md). In place,
            // the same kernels on the same values as TorchSharp's (sqrt / √bc₂) + ε.
            using var denom = state.exp_avg_sq.sqrt();
            denom.div_(root2).add_(eps, DistTrain.Models.Scalars.One);
            using var stepSize = (-(lr / correction1)).ToScalar();
            param.addcdiv_(state.exp_avg, denom, stepSize);
        }
    }, closure);
}
