# The decoders of test/breadth (included from test/e2e/CMakeLists.txt, which defines RUN_E2E,
# E2E_SRC, E2E_WORK and E2E_ENV; BREADTH_MODELS, set here, is read by the encoders after it).

# Decoders whose projections are fused or laid out differently (test/breadth/export_models.py:
# real PyTorch exports with PyTorch's logits): Phi-3 (packed [q; k; v] of different sizes, fused
# gate_up), GPT-NeoX (q, k, v interleaved per head, parallel residual), Falcon (multi-query
# fused, parallel attention), Qwen3 (q/k norms per head), OLMo 2 (q/k norms over the whole
# projection, norms after attention and MLP), OPT (biased q/k/v, ReLU MLP, learned positions
# with offset 2, tied lm_head), and Gemma (test/training/export_gemma_tiny.py: one kv head,
# 1 + w folded into its norms, scaled embedding, tied lm_head). Each runs unsharded against
# onnxruntime and PyTorch (1e-4), and with `tp_plan: auto` at tp=2 (fp32, fp32 with sequence
# parallelism, bf16 at the matrix's bf16 tolerance) and tp=2 x dp_shard=2 (fp32 and bf16; the
# exports' batch 2 splits over dp_shard) against them and the unsharded program.
set(BREADTH_MODELS ${CMAKE_SOURCE_DIR}/test/breadth/models)
set(BREADTH_DECODERS phi3_tiny gptneox_tiny falcon_tiny qwen3_tiny olmo2_tiny opt_tiny gemma_tiny)
foreach(model IN LISTS BREADTH_DECODERS)
  set(BREADTH_DIR_${model} ${BREADTH_MODELS})
endforeach()
set(BREADTH_DIR_gemma_tiny ${CMAKE_SOURCE_DIR}/test/training/models)
# e2e.breadth.<model>.<cell>.<plan>: <cell> names the mesh (tp2, tp4, tp2_dp_shard2).
function(breadth_cell model cell mesh ranks plan)
  set(tol --atol 1e-4)
  if(plan STREQUAL "bf16")
    set(tol --atol 5e-2 --rtol 2e-2) # the matrix's bf16 tolerance (CMakeLists.txt, shardc_matrix_cell)
  endif()
  set(dir ${BREADTH_DIR_${model}})
  set(name e2e.breadth.${model}.${cell}.${plan})
  add_test(NAME ${name}
           COMMAND ${RUN_E2E} --model ${dir}/${model}.onnx --workdir ${E2E_WORK}/breadth/${model}.${cell}.${plan}
                   --reference ${dir}/${model}.io.npz --ref-prefix ${model} --against-unsharded ${tol}
                   --compile-arg=--plan=${E2E_SRC}/plans/${plan}.yaml --compile-arg=--mesh=${mesh} --compile-arg=--quiet
                   --unsharded-compile-arg=--plan=${E2E_SRC}/plans/${plan}.yaml
                   --unsharded-compile-arg=--mesh=dp_replicate=1,dp_shard=1,cp=1,tp=1
                   --run-arg=--threads --run-arg=${ranks})
  set_tests_properties(${name} PROPERTIES LABELS "e2e;shard" TIMEOUT 300 ENVIRONMENT "${E2E_ENV}")
endfunction()
foreach(model IN LISTS BREADTH_DECODERS)
  add_test(NAME e2e.breadth.${model}.unsharded
           COMMAND ${RUN_E2E} --model ${BREADTH_DIR_${model}}/${model}.onnx --workdir ${E2E_WORK}/breadth/${model}.unsharded
                   --reference ${BREADTH_DIR_${model}}/${model}.io.npz --ref-prefix ${model} --compile-arg=--quiet)
  set_tests_properties(e2e.breadth.${model}.unsharded PROPERTIES LABELS e2e TIMEOUT 300 ENVIRONMENT "${E2E_ENV}")
  foreach(plan fp32 fp32-sp bf16)
    breadth_cell(${model} tp2 tp=2 2 ${plan})
  endforeach()
  foreach(plan fp32 bf16)
    breadth_cell(${model} tp2_dp_shard2 tp=2,dp_shard=2 4 ${plan})
  endforeach()
endforeach()
# Fused q/k/v projections whose kv heads are fewer than tp: Falcon's multi-query
# query_key_value ([4 q heads; 1 k; 1 v] split along the heads) at tp=2 and 4, Phi-3's
# [q; k; v] (2 kv heads) at tp=4. packed_colwise cuts them into parts and the kv parts repeat
# their heads in the weight; Gemma's separate k_proj/v_proj of one kv head are kept whole and
# their heads repeated. e2e.breadth.<model>.plan.<tp> checks the derived plan's shape
# (check_encoder_plan.py), so a projection falling back to replicated fails; OPT's checks that
# q/k/v and fc1 are colwise, out_proj and fc2 rowwise (lm_head replicated).
foreach(spec "falcon_tiny;tp2;attention=2,mlp=2,packed_colwise=2,colwise=2,rowwise=4,replicated=1"
             "falcon_tiny;tp4;attention=2,mlp=2,packed_colwise=2,colwise=2,rowwise=4,replicated=1"
             "phi3_tiny;tp2;attention=2,mlp=2,packed_colwise=4,colwise=0,rowwise=4,replicated=1"
             "phi3_tiny;tp4;attention=2,mlp=2,packed_colwise=4,colwise=0,rowwise=4,replicated=1"
             "opt_tiny;tp2;attention=2,mlp=2,packed_colwise=0,colwise=8,rowwise=4,replicated=1"
             "gemma_tiny;tp2;attention=2,mlp=2,packed_colwise=0,colwise=10,rowwise=4,replicated=1")
  list(GET spec 0 model)
  list(GET spec 1 tp)
  list(GET spec 2 expect)
  string(REPLACE "tp" "tp=" mesh ${tp})
  string(REPLACE "tp" "" ranks ${tp})
  add_test(NAME e2e.breadth.${model}.plan.${tp}
           COMMAND ${SHARDC_PYTHON} ${CMAKE_SOURCE_DIR}/test/breadth/check_encoder_plan.py --shardc $<TARGET_FILE:shardc>
                   --model ${BREADTH_DIR_${model}}/${model}.onnx --mesh ${mesh} --expect ${expect})
  set_tests_properties(e2e.breadth.${model}.plan.${tp} PROPERTIES LABELS "e2e;shard" TIMEOUT 120)
  if(NOT tp STREQUAL "tp2")
    foreach(plan fp32 fp32-sp)
      breadth_cell(${model} ${tp} ${mesh} ${ranks} ${plan})
    endforeach()
  endif()
endforeach()

# Parallel residual (GPT-NeoX with biases, Falcon without): the attention's and the MLP's
# rowwise outputs are summed before they are reduced (sc-propagate-sharding reassociates the
# add tree), one tp all-reduce per layer (with SP one reduce-scatter and one all-gather: Falcon's
# one norm output, GPT-NeoX's residual, gathered once for its two norms by sc-apply-plan); the
# numbers are e2e.breadth.<model>.tp2.* above.
foreach(spec "gptneox_tiny;fp32;all_reduce=1;" "gptneox_tiny;fp32-sp;all_gather=1,reduce_scatter=1;all_gather=1"
             "falcon_tiny;fp32;all_reduce=1;" "falcon_tiny;fp32-sp;all_gather=1,reduce_scatter=1;all_gather=1")
  list(GET spec 0 model)
  list(GET spec 1 plan)
  list(GET spec 2 per_layer)
  list(GET spec 3 outside)
  add_test(NAME e2e.breadth.${model}.collectives.tp2.${plan}
           COMMAND ${SHARDC_PYTHON} ${CMAKE_SOURCE_DIR}/test/breadth/check_collectives.py --shardc $<TARGET_FILE:shardc>
                   --model ${BREADTH_MODELS}/${model}.onnx --plan ${E2E_SRC}/plans/${plan}.yaml --mesh tp=2
                   --workdir ${E2E_WORK}/breadth/collectives --layers 2 --per-layer ${per_layer} --outside=${outside})
  set_tests_properties(e2e.breadth.${model}.collectives.tp2.${plan} PROPERTIES LABELS "e2e;shard" TIMEOUT 120)
endforeach()
# The same under training (test/breadth/check_train_sp.py): GPT-NeoX at tp=2 with sequence
# parallelism against one rank, five AdamW steps (losses 1e-5, grad norms 1e-4 relative), one
# all-gather and one reduce-scatter per layer in the forward.
add_test(NAME e2e.breadth.gptneox_tiny.train.tp2_sp
         COMMAND ${SHARDC_PYTHON} ${CMAKE_SOURCE_DIR}/test/breadth/check_train_sp.py --shardc $<TARGET_FILE:shardc>
                 --shardc-run $<TARGET_FILE:shardc-run> --model ${BREADTH_MODELS}/gptneox_tiny.onnx --vocab 128
                 --workdir ${E2E_WORK}/breadth/train_sp)
set_tests_properties(e2e.breadth.gptneox_tiny.train.tp2_sp PROPERTIES LABELS "e2e;train" TIMEOUT 300)

# The cost decision on a head outside the layers (test/breadth/make_head.py, made in the build
# tree): the pooler and classifier on a pooled [4, 64] vector stay replicated, on a
# [4096, 1024] one tp's saved GEMM time exceeds the all-reduce and they are sharded.
add_test(NAME e2e.breadth.head.make
         COMMAND ${SHARDC_PYTHON} ${CMAKE_SOURCE_DIR}/test/breadth/make_head.py
                 --out ${E2E_WORK}/breadth/head_s.onnx --batch 4 --hidden 64 --mkdir)
add_test(NAME e2e.breadth.head.make_large
         COMMAND ${SHARDC_PYTHON} ${CMAKE_SOURCE_DIR}/test/breadth/make_head.py
                 --out ${E2E_WORK}/breadth/head_l.onnx --batch 4096 --hidden 1024 --mkdir)
set_tests_properties(e2e.breadth.head.make e2e.breadth.head.make_large PROPERTIES FIXTURES_SETUP breadth_heads TIMEOUT 120)
foreach(spec "head_s;mlp=1,colwise=0,rowwise=0,replicated=2" "head_l;mlp=1,colwise=1,rowwise=1,replicated=0")
  list(GET spec 0 head)
  list(GET spec 1 expect)
  add_test(NAME e2e.breadth.${head}.plan
           COMMAND ${SHARDC_PYTHON} ${CMAKE_SOURCE_DIR}/test/breadth/check_encoder_plan.py --shardc $<TARGET_FILE:shardc>
                   --model ${E2E_WORK}/breadth/${head}.onnx --expect attention=0,${expect})
  set_tests_properties(e2e.breadth.${head}.plan PROPERTIES LABELS "e2e;shard" TIMEOUT 120 FIXTURES_REQUIRED breadth_heads)
endforeach()

# A batch-shaped constant under data parallelism (test/breadth/check_batch_constant.py): OPT's
# exporter folds the learned-position lookup into `embedding_1` [B, S, H], whose rows are equal
# in the export; a copy with the rows made to differ runs at dp_shard 2 and tp 2 x dp_shard 2
# against onnxruntime and the unsharded program, so a rank that took the wrong row fails.
foreach(spec "dp_shard2;dp_shard=2;2" "tp2_dp_shard2;tp=2,dp_shard=2;4")
  list(GET spec 0 label)
  list(GET spec 1 mesh)
  list(GET spec 2 ranks)
  add_test(NAME e2e.breadth.opt_tiny.batch_constant.${label}
           COMMAND ${SHARDC_PYTHON} ${CMAKE_SOURCE_DIR}/test/breadth/check_batch_constant.py
                   --model ${BREADTH_MODELS}/opt_tiny.onnx --constant embedding_1
                   --workdir ${E2E_WORK}/breadth/batch_constant.${label} -- ${RUN_E2E} --against-unsharded
                   --compile-arg=--plan=${E2E_SRC}/plans/fp32.yaml --compile-arg=--mesh=${mesh} --compile-arg=--quiet
                   --run-arg=--threads --run-arg=${ranks})
  set_tests_properties(e2e.breadth.opt_tiny.batch_constant.${label} PROPERTIES LABELS "e2e;shard" TIMEOUT 300
                       ENVIRONMENT "${E2E_ENV}")
endforeach()
