# zsh -f complete_zsh.zsh DIR LINE: what a real interactive zsh offers on TAB at the end
# of the command line LINE, with DIR first on $fpath (where _eventfold is). Runs zsh in a
# pseudo-terminal (zpty), prints one "<<MATCH>>word" line per match, exits when done.
zmodload zsh/zpty
init=$(mktemp) || exit 2
trap 'rm -f $init' EXIT
cat > $init <<'INIT'
PROMPT=
autoload -Uz compinit
compinit -u -D
bindkey '^M' undefined
bindkey '^J' undefined
bindkey '^I' complete-word
comppostfuncs=( exit )
zstyle ':completion:*' insert-tab false
compadd () {
    if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then
        builtin compadd "$@"
        return $?
    fi
    typeset -a __hits
    builtin compadd -A __hits "$@"
    local h
    for h in $__hits; do echo -E - "<<MATCH>>$h"; done
}
echo '<<READY>>'
INIT
zpty z zsh -f -i
zpty -w z "fpath=(${(q)1} \$fpath); source ${(q)init}"
zpty -r z ready '*<<READY>>*' || exit 2
zpty -w -n z "$2"$'\t'
while zpty -r z chunk; do print -rn -- "$chunk"; done
