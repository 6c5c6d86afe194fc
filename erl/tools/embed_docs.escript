#!/usr/bin/env escript
%% Put the EDoc of every module of beam_bridge into its .beam as an EEP-48 "Docs" chunk,
%% so that `h PyChild' in IEx, Code.fetch_docs/1 and code:get_doc/1 find it wherever the
%% application was built (rebar3's _build, a mix project's _build, a plain -pa folder).
%% Run by rebar3 after compile (rebar.config post_hooks); also by hand:
%%   escript erl/tools/embed_docs.escript SRC_DIR EBIN_DIR
-mode(compile).

main([SrcDir, EbinDir]) ->
    embed(SrcDir, EbinDir);
main([]) ->
    Root = os:getenv("REBAR_ROOT_DIR", "."),
    SrcDir = filename:join([Root, "erl", "src"]),
    EbinDir = case os:getenv("REBAR_BARE_COMPILER_OUTPUT_DIR") of
                  false -> filename:join([os:getenv("REBAR_BUILD_DIR", "_build/default"),
                                          "lib", "beam_bridge", "ebin"]);
                  Out -> filename:join(Out, "ebin")
              end,
    embed(SrcDir, EbinDir);
main(_) ->
    io:format(standard_error, "usage: embed_docs.escript [SRC_DIR EBIN_DIR]~n", []),
    halt(64).

%% A module whose EDoc does not parse keeps its .beam without docs and is named on
%% standard error; the build goes on (broken docs must not break a user's build).
embed(SrcDir, EbinDir) ->
    Sources = filelib:wildcard(filename:join(SrcDir, "*.erl")),
    Tmp = filename:join(EbinDir, ".doc_chunks"),
    Opts = [{preprocess, true}, {doclet, edoc_doclet_chunks}, {layout, edoc_layout_chunks},
            {dir, Tmp}],
    Failed = [Src || Src <- Sources, (catch edoc:files([Src], Opts)) =/= ok],
    [io:format(standard_error, "embed_docs: no docs embedded for ~s (EDoc error above)~n", [F])
     || F <- Failed],
    Chunks = filelib:wildcard(filename:join([Tmp, "chunks", "*.chunk"])),
    lists:foreach(fun(Chunk) -> embed_one(Chunk, EbinDir) end, Chunks),
    lists:foreach(fun file:delete/1, Chunks),
    _ = file:del_dir(filename:join(Tmp, "chunks")),
    _ = file:del_dir(Tmp),
    io:format("embedded the docs of ~b modules in ~s~n", [length(Chunks), EbinDir]).

embed_one(ChunkFile, EbinDir) ->
    Module = filename:basename(ChunkFile, ".chunk"),
    Beam = filename:join(EbinDir, Module ++ ".beam"),
    {ok, Docs} = file:read_file(ChunkFile),
    {ok, _, AllChunks} = beam_lib:all_chunks(Beam),
    Kept = [C || {Name, _} = C <- AllChunks, Name =/= "Docs"],
    {ok, NewBeam} = beam_lib:build_module(Kept ++ [{"Docs", Docs}]),
    ok = file:write_file(Beam, NewBeam).
