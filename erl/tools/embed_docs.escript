#!/usr/bin/env escript
%% Put the EDoc of every module of beam_bridge into its .beam as an EEP-48 "Docs" chunk,
%% so that `h PyChild' in IEx, Code.fetch_docs/1 and code:get_doc/1 find it wherever the
%% application was built (rebar3's _build, a mix project's _build, a plain -pa folder).
%% Run by rebar3 after the modules are compiled (erl/rebar.config); also by hand:
%%   escript erl/tools/embed_docs.escript SRC_DIR EBIN_DIR
-mode(compile).

main([SrcDir, EbinDir]) ->
    embed(SrcDir, EbinDir);
main([]) ->
    %% As a rebar3 hook: run in the application's folder (erl/, or wherever a project
    %% put it, such as _checkouts/beam_bridge), with rebar3's (or mix's) build folder.
    SrcDir = "src",
    Build = os:getenv("REBAR_BUILD_DIR", "_build/default"),
    Candidates = case os:getenv("REBAR_BARE_COMPILER_OUTPUT_DIR") of
                     false -> [filename:join([Build, Where, "beam_bridge", "ebin"])
                               || Where <- ["lib", "checkouts"]];
                     Out -> [filename:join(Out, "ebin")]
                 end,
    case [D || D <- Candidates, filelib:is_regular(filename:join(D, "beam_bridge.beam"))] of
        [] -> io:format(standard_error, "embed_docs: no beam_bridge ebin in ~p~n", [Candidates]);
        Found -> lists:foreach(fun(EbinDir) -> embed(SrcDir, EbinDir) end, Found)
    end;
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
    case beam_lib:all_chunks(Beam) of
        {ok, _, AllChunks} ->
            Kept = [C || {Name, _} = C <- AllChunks, Name =/= "Docs"],
            {ok, NewBeam} = beam_lib:build_module(Kept ++ [{"Docs", Docs}]),
            ok = file:write_file(Beam, NewBeam);
        {error, beam_lib, Reason} ->
            io:format(standard_error, "embed_docs: ~s left without docs: ~p~n", [Beam, Reason])
    end.
